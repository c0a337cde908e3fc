// Package storetest is the conformance suite every storage backend passes.
// A backend's test calls Run with a function that makes a fresh, empty
// database and returns an Opener for it; the suite opens it (sometimes
// several times at once, as several nodes would) and checks the contract
// of package store, including that concurrent writers lose no update.
package storetest
