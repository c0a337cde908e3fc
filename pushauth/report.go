package pushauth

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/bridge-idp/bridge/store"
)

// ErrNotReportable: ReportFraud was given something that is not one of
// the user's recorded sign-ins.
var ErrNotReportable = errors.New("pushauth: not a sign-in of this user")

// ErrAlreadyReported: the user reported this sign-in already (within the
// fraud lock); the repeat changed nothing.
var ErrAlreadyReported = errors.New("pushauth: this sign-in was reported already")

// fraudReportNamespace is the replay namespace of account-page reports:
// key user ":" seq.
const fraudReportNamespace = "account.fraud"

// ReportFraud acts on "this wasn't me" said of a past sign-in on the
// account page, as a device's fraud report does: pushes to user are
// locked for FraudLock (an operator lifts it with Unlock), a pending push
// is cancelled, the report is audited as push.fraud (actor user:<user>,
// channel account) and the fraud webhook is called. what is the reported
// sign-in's audit event sequence number (decimal); the event must be
// about user (ErrNotReportable otherwise). clientIP is the address of the
// browser the report came from; the webhook gets the reported sign-in's
// application and address.
//
// A sign-in counts once per user, on all nodes, for FraudLock: a repeat
// (a reload, a second click, a script) gets ErrAlreadyReported and does
// nothing, so it neither lengthens the back-off nor calls the webhook
// again. The report is recorded before the lock: if the lock then fails
// the caller gets the error, the user cannot repeat the report, and an
// error is logged for an operator to act on.
func (e *Engine) ReportFraud(ctx context.Context, user, what, clientIP string) error {
	seq, err := strconv.ParseInt(what, 10, 64)
	if err != nil || seq <= 0 {
		return fmt.Errorf("%w: %q is not an audit sequence number", ErrNotReportable, what)
	}
	evs, err := e.st.ListAudit(ctx, seq-1, 1)
	if err != nil {
		return fmt.Errorf("pushauth: reading the reported event: %w", err)
	}
	if len(evs) != 1 || evs[0].Seq != seq || evs[0].Subject != user {
		return fmt.Errorf("%w: audit event %d", ErrNotReportable, seq)
	}
	reported := evs[0]
	now := e.now()
	switch err := e.state.UseOnce(ctx, fraudReportNamespace, user+":"+what, now, now.Add(e.cfg.FraudLock)); {
	case errors.Is(err, store.ErrUsed):
		return ErrAlreadyReported
	case err != nil:
		return fmt.Errorf("pushauth: recording the fraud report: %w", err)
	}
	if _, err := e.st.UpdatePushLimit(ctx, user, func(l store.PushLimit) (store.PushLimit, error) {
		l.UpdatedAt = now
		l.Failures++
		l.NextAt = now.Add(backoff(e.cfg.BackoffBase, e.cfg.BackoffMax, l.Failures))
		l.LockedUntil = now.Add(e.cfg.FraudLock)
		l.LockReason = "the user reported a sign-in as fraud (audit event " + what + ")"
		return l, nil
	}); err != nil {
		// Not locked: the caller must not say it is.
		e.log.Error("a fraud report was recorded but pushes to the user are not locked", "user", user, "reported_seq", what, "err", err)
		return fmt.Errorf("pushauth: fraud lock: %w", err)
	}
	// A push waiting now may be the same intruder's next attempt.
	if pending, err := e.state.PendingChallenges(ctx, user, now); err == nil {
		for _, c := range pending {
			if err := e.Cancel(ctx, c.ID, "the user reported a sign-in as fraud"); err != nil && !errors.Is(err, store.ErrUsed) {
				e.log.Warn("cancelling a pending push after a fraud report failed", "user", user, "challenge", c.ID, "err", err)
			}
		}
	} else {
		e.log.Warn("listing pending pushes after a fraud report failed", "user", user, "err", err)
	}
	e.m.closed.WithLabelValues("fraud_reported_account").Inc()
	app := reported.Details["application"]
	if app == "" {
		app = reported.Details["app"]
	}
	if app == "" {
		app = reported.Details["client"] // RADIUS
	}
	details := map[string]string{"reported_seq": what, "reported_action": reported.Action, "reported_ip": reported.ClientIP}
	if app != "" {
		details["app"] = app
	}
	if c := reported.Details["challenge"]; c != "" {
		details["challenge"] = c
	}
	e.auditLog(ctx, store.AuditEvent{
		Actor: "user:" + user, Action: "push.fraud", Subject: user, Channel: "account", ClientIP: clientIP,
		Result: store.ResultDenied, Reason: "reported as fraud on the account page", Details: details,
	})
	e.fraudWebhook(store.Challenge{
		ID: reported.Details["challenge"], User: user, AppID: app, Channel: reported.Channel, ClientIP: reported.ClientIP,
		UserAgent: reported.Details["user_agent"],
	}, nil)
	return nil
}
