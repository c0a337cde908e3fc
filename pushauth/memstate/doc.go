// Package memstate keeps push approval state (pending challenges, the
// replay cache for device proofs) in memory, for a bridge running as a
// single node: no database round trip on the login path. Several nodes
// share the state in the database instead (store/sqlstore), which meets the
// same contract (store.PushState, checked by storetest.RunPushState).
//
// Everything sits behind one mutex; callers get copies. The state is lost
// on restart: pending logins fail and are retried, which is what a
// restarted node does anyway.
package memstate
