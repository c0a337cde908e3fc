// Package oidc is the bridge's OpenID Provider, on zitadel's op package.
//
// A relying party sends the browser to /oidc/authorize. The provider checks
// what op lets through (exact redirect URI, PKCE with S256, code flow
// only, query responses), stores the request (store.GrantAuthRequest) and
// sends the browser to /oidc/login, which hands it to the shared sign-in
// pages (package web): first factor, push approval. Back at
// /oidc/login/done the signed-in user is bound to the request and op's
// callback issues a code, with iss (RFC 9207), to the browser that signed
// in only.
//
// The token endpoint exchanges the code once: a replayed code revokes
// every token its first exchange got. Refresh tokens rotate on every use;
// a reused one revokes its whole family. Codes and tokens are stored as
// hashes in the store, so any node can serve any request; ID tokens are
// signed with the key manager's OIDC keys (ES256 by default, RS256 or
// EdDSA per client) and the JWKS lists every key still within its
// rotation overlap.
package oidc
