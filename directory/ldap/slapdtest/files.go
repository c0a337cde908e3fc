package slapdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

var confTemplate = template.Must(template.New("slapd.conf").Parse(`include {{.Schema}}/core.schema
include {{.Schema}}/cosine.schema
include {{.Schema}}/inetorgperson.schema
include {{.Schema}}/nis.schema
modulepath {{.ModulePath}}
moduleload back_mdb
{{- if .PPolicy}}
moduleload ppolicy
{{- end}}
{{- if .MemberOf}}
moduleload memberof
{{- end}}
pidfile {{.Dir}}/slapd.pid
argsfile {{.Dir}}/slapd.args
{{- with .TLS}}
TLSCACertificateFile {{.CA}}
TLSCertificateFile {{.Cert}}
TLSCertificateKeyFile {{.Key}}
{{- end}}

database mdb
maxsize 104857600
suffix "{{.Base}}"
rootdn "{{.AdminDN}}"
rootpw {{.RootPW}}
directory {{.Dir}}/db
{{- if .MemberOf}}
overlay memberof
{{- end}}
{{- if .PPolicy}}
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{{.Base}}"
{{- end}}
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
`))

func baseLDIF(s *Server) string {
	var b strings.Builder
	b.WriteString(`dn: ` + BaseDN + `
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ` + PeopleDN + `
objectClass: organizationalUnit
ou: people

dn: ` + GroupsDN + `
objectClass: organizationalUnit
ou: groups

dn: ou=services,` + BaseDN + `
objectClass: organizationalUnit
ou: services

dn: ` + ServiceDN + `
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: bridge
userPassword: ` + ServicePassword + `

dn: ` + AliceDN + `
objectClass: inetOrgPerson
uid: ` + AliceUID + `
cn: ` + AliceCN + `
sn: Liddell
mail: ` + AliceMail + `
userPassword: ` + AlicePassword + `

`)
	if s.PPolicy {
		b.WriteString(`dn: ou=policies,` + BaseDN + `
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,` + BaseDN + `
objectClass: pwdPolicy
objectClass: device
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE

dn: ` + BobDN + `
objectClass: inetOrgPerson
uid: ` + BobUID + `
cn: Bob
sn: Builder
userPassword: ` + BobPassword + `
pwdAccountLockedTime: 000001010000Z

`)
	} else {
		b.WriteString(`dn: ` + BobDN + `
objectClass: inetOrgPerson
uid: ` + BobUID + `
cn: Bob
sn: Builder
userPassword: ` + BobPassword + `
employeeType: disabled

`)
	}
	for _, g := range AliceGroups() {
		b.WriteString("dn: cn=" + g + "," + GroupsDN + "\nobjectClass: groupOfNames\ncn: " + g + "\nmember: " + AliceDN + "\n\n")
	}
	b.WriteString("dn: cn=nobody," + GroupsDN + "\nobjectClass: groupOfNames\ncn: nobody\nmember: " + ServiceDN + "\n")
	return b.String()
}

type tlsFiles struct{ CA, Cert, Key string }

// makeTLS writes a CA and a server certificate for 127.0.0.1 and localhost.
func makeTLS(t testing.TB, dir string) *tlsFiles {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "slapdtest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(f.CA, "CERTIFICATE", caDER)
	write(f.Cert, "CERTIFICATE", leafDER)
	write(f.Key, "PRIVATE KEY", keyDER)
	return f
}
