package account

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth"
)

// Reporting the same sign-in again says it was reported already and does
// nothing: no second push.fraud, no longer back-off, no webhook call.
func TestReportOnce(t *testing.T) {
	reports := make(chan pushauth.FraudReport, 8)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep pushauth.FraudReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		reports <- rep
	}))
	defer hook.Close()
	e := newEnv(t, envOptions{webhook: hook.URL})
	phone := e.enroll("alice")
	b := e.browser()
	b.signInWithPush("alice", phone)
	seq := itoa(e.audited("login", "alice")[0].Seq)
	c := b.get("/account/signins/" + seq + "/report")
	if r := b.post("/account/signins/"+seq+"/report", url.Values{"csrf": {c.csrf()}}); r.status != http.StatusOK || r.heading() != "Reported" {
		t.Fatalf("report: %d %s", r.status, r.text())
	}
	lim, _ := e.st.GetPushLimit(e.ctx, "alice")
	for range 3 {
		if r := b.post("/account/signins/"+seq+"/report", url.Values{"csrf": {c.csrf()}}); r.status != http.StatusOK || r.heading() != "Already reported" {
			t.Errorf("the report repeated: %d %s", r.status, r.text())
		}
	}
	if again, _ := e.st.GetPushLimit(e.ctx, "alice"); again.Failures != lim.Failures || !again.NextAt.Equal(lim.NextAt) {
		t.Errorf("repeats changed the push limit: %+v, was %+v", again, lim)
	}
	if n := len(e.audited("push.fraud", "alice")); n != 1 {
		t.Errorf("%d push.fraud events, want 1", n)
	}
	select {
	case <-reports:
	case <-time.After(10 * time.Second):
		t.Fatal("the fraud webhook was not called")
	}
	e.eng.Close() // waits for the webhook calls in flight
	if n := len(reports); n != 0 {
		t.Errorf("%d more webhook calls after repeats", n)
	}
}
