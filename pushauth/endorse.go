package pushauth

import "github.com/bridge-idp/bridge/store"

// Endorsements are the push-key endorsements the device API publishes with
// the push keys (keys.Manager.Endorsements): a device that pinned an older
// push key follows them to the active one.
func (e *Engine) Endorsements() []string { return e.keys.Endorsements(store.PurposePush) }
