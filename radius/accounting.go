package radius

import (
	"context"
	"net/netip"
	"strconv"
	"strings"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"

	"github.com/bridge-idp/bridge/store"
)

// accounting acknowledges an Accounting-Request once it is in the audit log,
// so that a NAS that sends accounting does not retry it forever. The bridge
// keeps no sessions of its own: the audit log is the record.
func (s *Server) accounting(ctx context.Context, c *Client, p *radius.Packet, src netip.AddrPort) *radius.Packet {
	status := rfc2866.AcctStatusType_Get(p)
	name := status.String()
	if _, known := knownStatus[status]; !known {
		name = strconv.Itoa(int(status))
	}
	d := map[string]string{"client": c.Name, "nas_addr": src.Addr().String(), "status": name}
	add := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			if len(v) > 253 {
				v = v[:253]
			}
			d[k] = v
		}
	}
	add("session_id", rfc2866.AcctSessionID_GetString(p))
	add("nas_identifier", rfc2865.NASIdentifier_GetString(p))
	add("calling_station_id", rfc2865.CallingStationID_GetString(p))
	add("class", string(rfc2865.Class_Get(p)))
	if ip, err := rfc2865.FramedIPAddress_Lookup(p); err == nil {
		add("framed_ip", ip.String())
	}
	if status == rfc2866.AcctStatusType_Value_Stop {
		add("session_time", strconv.Itoa(int(rfc2866.AcctSessionTime_Get(p))))
		add("terminate_cause", rfc2866.AcctTerminateCause_Get(p).String())
	}
	clientIP := ""
	if a, err := netip.ParseAddr(d["calling_station_id"]); err == nil {
		clientIP = a.Unmap().String()
	}
	_, err := s.deps.Audit.Append(context.WithoutCancel(ctx), store.AuditEvent{
		Time: s.now(), Actor: "radius:" + c.Name, Action: "radius.accounting", Subject: rfc2865.UserName_GetString(p),
		Channel: "radius", ClientIP: clientIP, Result: store.ResultSuccess, Details: d,
	})
	if err != nil {
		// Not acknowledged: the NAS retries, and the record is not lost.
		s.log.Error("recording RADIUS accounting in the audit log failed; not acknowledging it", "client", c.Name, "err", err)
		return nil
	}
	s.metrics.accounting.WithLabelValues(c.Name, name).Inc()
	return p.Response(radius.CodeAccountingResponse)
}

var knownStatus = map[rfc2866.AcctStatusType]bool{
	rfc2866.AcctStatusType_Value_Start: true, rfc2866.AcctStatusType_Value_Stop: true,
	rfc2866.AcctStatusType_Value_InterimUpdate: true, rfc2866.AcctStatusType_Value_AccountingOn: true,
	rfc2866.AcctStatusType_Value_AccountingOff: true,
}
