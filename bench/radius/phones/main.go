package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/protocol"
)

func main() {
	var (
		admin     = flag.String("admin", "", "base URL of the bridge's admin listener, such as http://127.0.0.1:9090")
		tokenFile = flag.String("token-file", "", "file holding the admin API token (http.admin_api.token)")
		usersFile = flag.String("users", "", "file with one user name a line: one device is enrolled for each")
		control   = flag.String("control", "127.0.0.1:0", "address of the control listener (/ready, /stats)")
		addrFile  = flag.String("addr-file", "", "write the control listener's address to this file once it listens")
		workers   = flag.Int("enroll-workers", 8, "enrollments made at once")
		wait      = flag.Duration("wait", 25*time.Second, "long-poll wait (at most 30s)")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("phones: ")
	if *admin == "" || *tokenFile == "" || *usersFile == "" {
		log.Fatal("-admin, -token-file and -users are required")
	}
	token, err := os.ReadFile(*tokenFile)
	if err != nil {
		log.Fatal(err)
	}
	users, err := readUsers(*usersFile)
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s := &sim{}
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		log.Fatal(err)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()

	// One connection per device stays open between its long-polls and
	// answers (the default transport keeps 2 per host and would reconnect
	// for nearly every request).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = 2*len(users) + 16
	client := &http.Client{Transport: tr}

	start := time.Now()
	devices, err := s.enrollAll(ctx, client, strings.TrimRight(*admin, "/"), strings.TrimSpace(string(token)), users, *workers)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("enrolled %d devices in %s (%d enrollments retried after a server error)",
		len(devices), time.Since(start).Round(time.Millisecond), s.enrollRetries.Load())

	var wg sync.WaitGroup
	for _, d := range devices {
		wg.Go(func() { s.run(ctx, d, *wait) })
	}
	s.ready.Store(true)
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	wg.Wait()
}

func readUsers(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var users []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if u := strings.TrimSpace(sc.Text()); u != "" {
			users = append(users, u)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no users", path)
	}
	return users, nil
}

// enrollAll enrolls one device per user, workers at a time; the first
// failure that is not a server error, or the fifth in a row for a user,
// stops it.
func (s *sim) enrollAll(ctx context.Context, client *http.Client, admin, token string, users []string, workers int) ([]*authenticator.Device, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	devices := make([]*authenticator.Device, len(users))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(users) || ctx.Err() != nil {
					return
				}
				d, err := enroll(ctx, client, admin, token, users[i])
				for try := 1; err != nil && try < 5 && isServerError(err) && ctx.Err() == nil; try++ {
					s.enrollRetries.Add(1)
					log.Printf("enrolling a device for %s: %v; trying again", users[i], err)
					time.Sleep(100 * time.Millisecond)
					d, err = enroll(ctx, client, admin, token, users[i])
				}
				if err != nil {
					cancel(fmt.Errorf("enrolling a device for %s: %w", users[i], err))
					return
				}
				devices[i] = d
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return devices, nil
}

// adminError is an admin API call that failed with an HTTP status.
type adminError struct {
	status int
	body   string
}

func (e *adminError) Error() string { return fmt.Sprintf("admin API: %d: %s", e.status, e.body) }

// isServerError reports whether the bridge answered with a 5xx status.
func isServerError(err error) bool {
	var ae *adminError
	var se *authenticator.ServerError
	return errors.As(err, &ae) && ae.status >= 500 || errors.As(err, &se) && se.Status >= 500
}

// enroll asks the admin API for an activation and enrolls a device with it.
func enroll(ctx context.Context, client *http.Client, admin, token, user string) (*authenticator.Device, error) {
	u := admin + "/admin/v1/users/" + url.PathEscape(user) + "/activations?format=json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, &adminError{status: resp.StatusCode, body: strings.TrimSpace(string(body))}
	}
	var act struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(body, &act); err != nil || act.URL == "" {
		return nil, fmt.Errorf("admin API: no activation URL in %q", body)
	}
	return authenticator.Enroll(ctx, act.URL, authenticator.EnrollOptions{Name: "bench phone " + user, HTTPClient: client})
}

// sim is the devices' shared tally.
type sim struct {
	ready         atomic.Bool
	enrollRetries atomic.Int64

	mu           sync.Mutex
	latency      []time.Duration // poll returned → answer accepted
	answered     int
	answerErrors int
	pollErrors   int
	refused      int
	lastErr      string
}

// run is one phone: long-poll, approve what comes, again.
func (s *sim) run(ctx context.Context, d *authenticator.Device, wait time.Duration) {
	// done holds the challenges this device answered (or failed to) that
	// may still be listed: they are passed as known so that the poll
	// waits for something new instead of returning them again.
	done := map[string]bool{}
	for ctx.Err() == nil {
		known := make([]string, 0, len(done))
		for id := range done {
			known = append(known, id)
		}
		list, err := d.Pending(ctx, wait, known...)
		got := time.Now()
		var perr *authenticator.PendingError
		if err != nil && !errors.As(err, &perr) {
			if ctx.Err() != nil {
				return
			}
			s.fail(&s.pollErrors, err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if perr != nil {
			s.mu.Lock()
			s.refused += len(perr.Refused)
			s.mu.Unlock()
		}
		listed := map[string]bool{}
		for _, c := range list {
			listed[c.ID] = true
			if done[c.ID] || c.State != "" && c.State != "pending" {
				continue
			}
			done[c.ID] = true
			_, err := d.Answer(ctx, c, protocol.Approve, "")
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.fail(&s.answerErrors, err)
				continue
			}
			took := time.Since(got)
			s.mu.Lock()
			s.answered++
			s.latency = append(s.latency, took)
			s.mu.Unlock()
		}
		for id := range done {
			if !listed[id] {
				delete(done, id)
			}
		}
	}
}

func (s *sim) fail(counter *int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*counter++
	s.lastErr = err.Error()
}

func (s *sim) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "enrolling", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		lat := slices.Clone(s.latency)
		out := fmt.Sprintf("answered=%d\nanswer_errors=%d\npoll_errors=%d\nrefused=%d\nenroll_retries=%d\n",
			s.answered, s.answerErrors, s.pollErrors, s.refused, s.enrollRetries.Load())
		if s.lastErr != "" {
			out += fmt.Sprintf("last_error=%q\n", s.lastErr)
		}
		if r.URL.Query().Get("reset") == "1" {
			s.latency, s.answered, s.answerErrors, s.pollErrors, s.refused, s.lastErr = s.latency[:0], 0, 0, 0, 0, ""
		}
		s.mu.Unlock()
		slices.Sort(lat)
		for _, q := range []struct {
			name string
			q    float64
		}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"max", 1}} {
			out += fmt.Sprintf("phone_%s_ms=%.2f\n", q.name, ms(quantile(lat, q.q)))
		}
		fmt.Fprint(w, out)
	})
	return mux
}

// quantile is the nearest-rank quantile of sorted durations (0 if none).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
