// Package saml is the bridge's SAML 2.0 identity provider, on
// github.com/crewjam/saml.
//
// A service provider sends the browser to /saml/sso with an AuthnRequest
// (HTTP-Redirect or HTTP-POST). The IdP parses and validates it with
// crewjam (known SP, ACS URL and binding from the SP's metadata), adds
// what crewjam leaves out (a replay cache of request ids in the store,
// IssueInstant within the clock skew, signed requests where the SP or the
// config asks for them), keeps the request in the store
// (store.GrantSAMLRequest) and hands the browser to the shared sign-in
// (package web): first factor and push approval. Back at /saml/login/done
// it builds the assertion itself (Audience, Recipient, InResponseTo, a
// short NotOnOrAfter, an authentication context saying MFA, the
// configured attributes), and crewjam signs the assertion and the
// Response with RSA-SHA256 (crewjam's default would be RSA-SHA1) and posts
// them to the ACS.
//
// The signing key is the key manager's SAML key (RSA, or P-256 for
// ecdsa-sha256); its self-signed certificate is made once and kept in the
// store, so every node publishes the same one.
package saml
