package main

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/store"
)

func (c *cli) auditCommand() *cobra.Command {
	var verifyJSON bool
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain",
		Long: `Read the whole audit log and check its hash chain: every event must carry
its predecessor's hash and match its own, sequence numbers must have no gap,
and the log must end at the recorded head. Any modified, inserted, deleted or
reordered event is reported. Exit code 0 if intact, 1 if not.`,
		Args: args(0),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, _ []string) error {
			rep, err := store.VerifyChain(cmd.Context(), ad.store, ad.sealer.DeriveKey(auditKeyLabel), 0)
			if err != nil {
				return err
			}
			if verifyJSON {
				problems := make([]map[string]any, 0, len(rep.Problems))
				for _, p := range rep.Problems {
					problems = append(problems, map[string]any{"seq": p.Seq, "reason": p.Reason})
				}
				if err := c.printJSON(map[string]any{"ok": rep.OK(), "events": rep.Events, "head_seq": rep.Head.Seq, "head_hash": hex.EncodeToString(rep.Head.Hash), "problems": problems}); err != nil {
					return err
				}
			} else if rep.OK() {
				fmt.Fprintf(c.stdout, "audit log intact: %d events, head %d (%s)\n", rep.Events, rep.Head.Seq, shortHash(rep.Head.Hash))
			} else {
				fmt.Fprintf(c.stdout, "audit log BROKEN: %d problem(s) in %d events read\n", len(rep.Problems), rep.Events)
				for _, p := range rep.Problems {
					fmt.Fprintf(c.stdout, "  %s\n", p)
				}
			}
			if !rep.OK() {
				return silentError{}
			}
			return nil
		}),
	}
	verify.Flags().BoolVar(&verifyJSON, "json", false, "print JSON")

	var (
		n        int
		follow   bool
		tailJSON bool
		every    time.Duration
	)
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print recent audit events",
		Args:  args(0),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, _ []string) error {
			if n < 1 {
				return usagef("-n must be at least 1")
			}
			if every <= 0 {
				return usagef("--interval must be positive")
			}
			ctx := cmd.Context()
			head, err := ad.store.AuditHead(ctx)
			if err != nil {
				return err
			}
			after := max(head.Seq-int64(n), 0)
			for {
				events, err := ad.store.ListAudit(ctx, after, 1000)
				if err != nil {
					return err
				}
				for _, e := range events {
					if err := c.printEvent(e, tailJSON); err != nil {
						return err
					}
					after = e.Seq
				}
				if !follow {
					return nil
				}
				if len(events) == 0 {
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(every):
					}
				}
			}
		}),
	}
	tail.Flags().IntVarP(&n, "lines", "n", 20, "how many recent events")
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	tail.Flags().DurationVar(&every, "interval", time.Second, "with --follow, how often to look for new events")
	tail.Flags().BoolVar(&tailJSON, "json", false, "print one JSON object per line")
	return groupCommand("audit", "Read and verify the audit log", verify, tail)
}

func (c *cli) printEvent(e store.AuditEvent, asJSON bool) error {
	if asJSON {
		return jsonLine(c.stdout, map[string]any{
			"seq": e.Seq, "time": e.Time, "actor": e.Actor, "action": e.Action, "subject": e.Subject,
			"channel": e.Channel, "client_ip": e.ClientIP, "result": e.Result, "reason": e.Reason, "details": e.Details,
		})
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 1, ' ', 0)
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var details []string
	for _, k := range keys {
		details = append(details, k+"="+e.Details[k])
	}
	fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Local().Format(time.RFC3339), e.Channel, e.Actor, e.Action,
		dash(e.Subject), e.Result, dash(e.ClientIP), dash(e.Reason), strings.Join(details, " "))
	return w.Flush()
}
