package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// longPoll is how long one poll waits on the server.
const longPoll = 25 * time.Second

type waitOptions struct {
	once        bool
	autoApprove bool
	autoDeny    bool
	number      string
	timeout     time.Duration
	answerAfter time.Duration // with --auto-*: wait this long before answering
}

func (c *cli) waitCommand() *cobra.Command {
	var o waitOptions
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait for login requests and answer them",
		Long: `wait long-polls the bridge for login requests. For each one it shows who is
logging in to what, from where, and asks you to approve, deny, or report it
("this wasn't me"). With number matching it first asks for the number shown
on the login screen. A request answered elsewhere or closed is dismissed.

--auto-approve and --auto-deny answer without asking (for tests and
scripts); a request with number matching is approved only with --number.
--answer-after makes them wait before answering, as a user who takes a
moment would. --once exits after the first answer: 0 if the bridge
recorded it.`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.autoApprove && o.autoDeny:
				return usagef("--auto-approve and --auto-deny exclude each other")
			case o.number != "" && !o.autoApprove:
				return usagef("--number goes with --auto-approve")
			case o.number != "" && strings.Trim(o.number, "0123456789") != "":
				return usagef("--number must be digits, not %q", o.number)
			case o.timeout < 0:
				return usagef("--timeout must not be negative")
			case o.answerAfter < 0:
				return usagef("--answer-after must not be negative")
			case o.answerAfter > 0 && !o.autoApprove && !o.autoDeny:
				return usagef("--answer-after goes with --auto-approve or --auto-deny")
			}
			dev, path, err := c.loadDevice()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if o.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, o.timeout)
				defer cancel()
			}
			w := &waiter{cli: c, dev: dev, path: path, opts: o, keys: len(dev.PushKeys()),
				seen: map[string]bool{}, unanswered: map[string]bool{}, warned: map[string]bool{}}
			err = w.loop(ctx)
			if ctx.Err() == nil || err == nil {
				return err
			}
			interrupted := cmd.Context().Err() != nil
			switch {
			case interrupted && o.once:
				fmt.Fprintln(c.stderr, "Stopped before a login request was answered.")
				return silentError{}
			case interrupted:
				fmt.Fprintln(c.stderr, "Stopped.")
				return nil
			case o.once:
				return fmt.Errorf("no login request was answered within %s", o.timeout)
			default:
				fmt.Fprintf(c.stdout, "Stopped after %s.\n", o.timeout)
				return nil
			}
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.once, "once", false, "exit after the first answered login request")
	f.BoolVar(&o.autoApprove, "auto-approve", false, "approve every login request without asking")
	f.BoolVar(&o.autoDeny, "auto-deny", false, "deny every login request without asking")
	f.StringVar(&o.number, "number", "", "with --auto-approve: the number to send for number matching")
	f.DurationVar(&o.timeout, "timeout", 0, "stop after this long (0: never)")
	f.DurationVar(&o.answerAfter, "answer-after", 0, "with --auto-approve or --auto-deny: wait this long before answering")
	return cmd
}

// waiter is one run of wait.
type waiter struct {
	cli  *cli
	dev  *authenticator.Device
	path string
	opts waitOptions
	keys int // trusted push keys saved in the state file

	seen       map[string]bool // challenges shown, by id, while pending
	unanswered map[string]bool // shown but left unanswered
	warned     map[string]bool // refused challenges already reported
}

// loop polls and handles new challenges until ctx ends, a --once answer,
// or a fatal error.
func (w *waiter) loop(ctx context.Context) error {
	c := w.cli
	fmt.Fprintf(c.stdout, "Waiting for login requests for %s at %s (Ctrl-C to stop).\n", w.dev.User(), w.dev.BaseURL())
	failures := 0
	for {
		// Naming the requests already seen makes the bridge wait for a
		// change (a new request, or one of them closed) instead of
		// answering at once while they are pending. A bridge that answers
		// at once anyway is polled every pollInterval (below).
		known := make([]string, 0, len(w.seen))
		for id := range w.seen {
			known = append(known, id)
		}
		list, err := w.dev.Pending(ctx, longPoll, known...)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var perr *authenticator.PendingError
		refused := errors.As(err, &perr)
		if refused {
			w.reportRefused(perr)
			err = nil
		}
		if err != nil {
			if fatal(err) {
				return err
			}
			failures++
			delay := min(time.Second<<min(failures-1, 5), 30*time.Second)
			fmt.Fprintf(c.stderr, "Polling the bridge failed (retrying in %s): %v\n", delay, err)
			if err := pause(ctx, delay); err != nil {
				return err
			}
			continue
		}
		failures = 0
		w.saveKeys()

		listed := map[string]bool{}
		var fresh []authenticator.Challenge
		for _, ch := range list {
			if ch.State != "" && ch.State != "pending" {
				continue
			}
			listed[ch.ID] = true
			if !w.seen[ch.ID] {
				fresh = append(fresh, ch)
			}
		}
		for id := range w.seen {
			if !listed[id] {
				if w.unanswered[id] {
					fmt.Fprintf(c.stdout, "Login request %s is no longer pending (answered elsewhere or closed).\n", id)
				}
				delete(w.seen, id)
				delete(w.unanswered, id)
			}
		}
		if len(fresh) == 0 {
			if len(list) > 0 || refused { // the server answered at once: do not spin
				if err := pause(ctx, c.pollInterval); err != nil {
					return err
				}
			}
			continue
		}
		for _, ch := range fresh {
			w.seen[ch.ID] = true
			done, err := w.handle(ctx, ch)
			if err != nil || done {
				return err
			}
		}
	}
}

// fatal says whether a polling error will not go away by retrying.
func fatal(err error) bool {
	var serr *authenticator.ServerError
	if errors.As(err, &serr) {
		return serr.Status < 500 && serr.Status != 429
	}
	return errors.Is(err, authenticator.ErrTLSPin)
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// saveKeys saves the state when the trusted push keys changed.
func (w *waiter) saveKeys() {
	if n := len(w.dev.PushKeys()); n != w.keys {
		if err := w.dev.Save(w.path); err != nil {
			fmt.Fprintf(w.cli.stderr, "Could not save the new push keys: %v\n", err)
			return
		}
		w.keys = n
	}
}

func (w *waiter) reportRefused(perr *authenticator.PendingError) {
	for _, r := range perr.Refused {
		if w.warned[r.ID] {
			continue
		}
		w.warned[r.ID] = true
		if errors.Is(r, authenticator.ErrInvalidChallenge) {
			fmt.Fprintf(w.cli.stderr, "Refused a login request that failed verification; it is not shown. If this repeats, tell your administrator.\n  %s\n", clean(r.Error(), 300))
		} else {
			fmt.Fprintf(w.cli.stderr, "Could not check a login request: %s\n", clean(r.Error(), 300))
		}
	}
}

// handle shows one new challenge and answers it. done is true when wait
// --once has finished.
func (w *waiter) handle(ctx context.Context, ch authenticator.Challenge) (done bool, err error) {
	w.show(ch)
	nm := ch.Claims.NumberDigits
	if w.opts.answerAfter > 0 && (w.opts.autoApprove || w.opts.autoDeny) {
		if err := pause(ctx, w.opts.answerAfter); err != nil {
			return false, err
		}
	}
	switch {
	case w.opts.autoApprove:
		if nm > 0 && len(w.opts.number) != nm {
			if w.opts.number == "" {
				fmt.Fprintf(w.cli.stdout, "It needs the %d-digit number shown on the login screen: cannot auto-approve without --number. Left unanswered.\n", nm)
			} else {
				fmt.Fprintf(w.cli.stdout, "It needs a %d-digit number, --number has %d digits: cannot auto-approve. Left unanswered.\n", nm, len(w.opts.number))
			}
			w.unanswered[ch.ID] = true
			return false, nil
		}
		return w.answer(ctx, ch, protocol.Approve, w.opts.number)
	case w.opts.autoDeny:
		return w.answer(ctx, ch, protocol.Deny, "")
	}

	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	gone := w.watch(watchCtx, ch)
	number := ""
	for {
		if nm > 0 && number == "" {
			line, err := w.cli.ask(ctx, gone, "Type the number shown on the login screen (Enter if you did not start this login): ")
			if err != nil {
				return w.promptEnded(ch, err)
			}
			line = strings.TrimSpace(line)
			if line != "" && (len(line) != nm || strings.Trim(line, "0123456789") != "") {
				fmt.Fprintf(w.cli.stdout, "The number has %d digits.\n", nm)
				continue
			}
			number = line
		}
		line, err := w.cli.ask(ctx, gone, "Approve this login? [a]pprove, [d]eny, [r]eport (this wasn't me): ")
		if err != nil {
			return w.promptEnded(ch, err)
		}
		decision := parseDecision(line)
		switch {
		case decision == "":
			fmt.Fprintln(w.cli.stdout, "Answer a, d or r.")
			continue
		case decision == protocol.Approve && nm > 0 && number == "":
			fmt.Fprintln(w.cli.stdout, "Approving needs the number shown on the login screen.")
			continue
		}
		return w.answer(ctx, ch, decision, number)
	}
}

func parseDecision(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "a", "approve", "y", "yes":
		return protocol.Approve
	case "d", "deny", "n", "no":
		return protocol.Deny
	case "r", "report", "fraud":
		return protocol.Fraud
	}
	return ""
}

// goneError: the challenge on screen closed (reason says how).
type goneError struct{ reason string }

func (e goneError) Error() string { return e.reason }

// promptEnded handles a prompt that ended without an answer.
func (w *waiter) promptEnded(ch authenticator.Challenge, err error) (bool, error) {
	var gone goneError
	switch {
	case errors.As(err, &gone):
		fmt.Fprintf(w.cli.stdout, "Login request %s %s: dismissed.\n", ch.ID, gone.reason)
		return false, nil
	case errors.Is(err, io.EOF):
		return false, errors.New("stdin closed before an answer was given")
	default:
		return false, err
	}
}

// answer sends a decision. A refused answer ends wait --once with an
// error; otherwise it is reported and waiting goes on.
func (w *waiter) answer(ctx context.Context, ch authenticator.Challenge, decision, number string) (bool, error) {
	c := w.cli
	state, err := w.dev.Answer(ctx, ch, decision, number)
	if err == nil {
		verb := map[string]string{protocol.Approve: "Approved", protocol.Deny: "Denied", protocol.Fraud: "Reported as not you"}[decision]
		fmt.Fprintf(c.stdout, "%s. The bridge recorded: %s.\n", verb, clean(state, 40))
		return w.opts.once, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if w.opts.once {
		return true, fmt.Errorf("the bridge did not record the answer: %w", err)
	}
	var serr *authenticator.ServerError
	if !errors.As(err, &serr) {
		delete(w.seen, ch.ID) // not sent: show it again if it is still pending
	}
	fmt.Fprintf(c.stderr, "The bridge did not record the answer: %v\n", err)
	return false, nil
}

// show prints who is logging in to what, from where, and when.
func (w *waiter) show(ch authenticator.Challenge) {
	cl := ch.Claims
	app := clean(cl.AppName, 100)
	if cl.AppID != "" && cl.AppID != cl.AppName {
		app += " (" + clean(cl.AppID, 100) + ")"
	}
	expires := timeText(ch.Expires())
	if left := ch.Expires().Sub(w.cli.now()).Round(time.Second); left > 0 {
		expires += fmt.Sprintf(" (in %s)", left)
	} else {
		expires += " (expired)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nLogin request %s\n", ch.ID)
	for _, row := range [][2]string{
		{"User", clean(cl.User, 100)},
		{"Application", app},
		{"Channel", clean(cl.Channel, 40)},
		{"Client IP", clean(cl.ClientIP, 64)},
		{"User agent", clean(cl.UserAgent, 200)},
		{"Location", clean(cl.Location, 100)},
		{"Issued", timeText(ch.Issued())},
		{"Expires", expires},
	} {
		fmt.Fprintf(&b, "  %-12s %s\n", row[0]+":", row[1])
	}
	if cl.NumberDigits > 0 {
		fmt.Fprintf(&b, "  %-12s %d digits to type from the login screen\n", "Number:", cl.NumberDigits)
	}
	fmt.Fprint(w.cli.stdout, b.String())
}

// clean makes server text safe for a terminal: no control characters (no
// escape sequences), at most n runes; "" becomes "-".
func clean(s string, n int) string {
	if s == "" {
		return "-"
	}
	return authenticator.Printable(s, n)
}

// watch reports, once, that the challenge on screen expired or is no
// longer pending (answered elsewhere or closed), polling every
// pollInterval until ctx ends.
func (w *waiter) watch(ctx context.Context, ch authenticator.Challenge) <-chan goneError {
	gone := make(chan goneError, 1)
	go func() {
		expiry := time.NewTimer(max(ch.Expires().Sub(w.cli.now()), 0))
		defer expiry.Stop()
		tick := time.NewTicker(w.cli.pollInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-expiry.C:
				gone <- goneError{"expired"}
				return
			case <-tick.C:
			}
			list, err := w.dev.Pending(ctx, 0)
			var perr *authenticator.PendingError
			if err != nil && !errors.As(err, &perr) {
				continue // cannot tell: keep it on screen
			}
			still := false
			for _, c := range list {
				still = still || (c.ID == ch.ID && (c.State == "" || c.State == "pending"))
			}
			if !still {
				gone <- goneError{"was answered elsewhere or closed"}
				return
			}
		}
	}()
	return gone
}

// inputLine is one line of stdin, or the error that ended it.
type inputLine struct {
	text string
	err  error
}

// ask prints prompt and returns the next line of stdin, unless the
// challenge goes (goneError) or ctx ends first. At the end of stdin it
// returns io.EOF.
func (c *cli) ask(ctx context.Context, gone <-chan goneError, prompt string) (string, error) {
	fmt.Fprint(c.stdout, prompt)
	select {
	case l, ok := <-c.lines():
		if !ok {
			fmt.Fprintln(c.stdout)
			return "", io.EOF
		}
		return l.text, l.err
	case g := <-gone:
		fmt.Fprintln(c.stdout)
		return "", g
	case <-ctx.Done():
		fmt.Fprintln(c.stdout)
		return "", ctx.Err()
	}
}

// lines starts, on first use, the goroutine that reads stdin line by line.
// It ends at the end of stdin or when the command is done (a read already
// under way finishes first).
func (c *cli) lines() <-chan inputLine {
	if c.input != nil {
		return c.input
	}
	c.input = make(chan inputLine)
	in, done := c.input, c.done
	go func() {
		defer close(in)
		sc := bufio.NewScanner(c.stdin)
		for sc.Scan() {
			select {
			case in <- inputLine{text: sc.Text()}:
			case <-done:
				return
			}
		}
		if err := sc.Err(); err != nil {
			select {
			case in <- inputLine{err: fmt.Errorf("reading stdin: %w", err)}:
			case <-done:
			}
		}
	}()
	return c.input
}
