// Package config loads and validates bridge.yaml.
//
// Load (or Parse, for a config in memory) turns the file into a *Config in
// fixed steps:
//
//  1. decode: the YAML is parsed into a node tree and walked alongside the
//     File type, so that unknown or duplicate keys, values of the wrong
//     type, anchors and aliases are reported with their key path and line;
//     ${NAME} in values is replaced by the environment variable NAME;
//  2. defaults: every key the file leaves out gets its default, in one
//     place (defaults); keys written with a value keep it, even zero;
//  3. paths: relative paths are made absolute against the config file's
//     directory;
//  4. secrets: kek_file, dsn_file, http.admin_api.token_file,
//     bind_password_file, push.fraud_webhook.secret_file, the RADIUS and
//     OIDC clients' secret_file and web.captcha.secret_file are read into
//     their value keys, the OIDC clients' jwks_file into JWKS (a
//     private key there is refused), and app.attestation_roots into
//     App.AttestationRootCerts (CA certificates only);
//  5. Validate: every other problem is found (key files such as TLS
//     certificates and the push section's FCM and APNs keys are read and
//     checked, and RADIUS reply attributes are encoded with package
//     radius/dict), and reported together with those of step 1 (leaving out
//     what a value that did not decode would cause);
//  6. the KEK is decoded, and Warnings lists every setting weaker than the
//     default (including a secret file that other users can read), for
//     serve to log.
//
// Every error is an *Error, printed as "file:line: key.path: problem";
// several are joined with errors.Join, sorted by line. A value that came
// from ${NAME} is never quoted in a message (it may be a secret under the
// wrong key): the message names it "the value of ${NAME}". The package reads
// files (the config, secrets, TLS certificates) but never writes any: serve
// creates DevKEKPath in dev mode.
package config
