package slapdtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
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
access to dn.subtree="{{.People}}" by dn.exact="{{.ServiceDN}}" read by self read by anonymous auth by * none
access to dn.subtree="{{.Groups}}" by dn.exact="{{.ServiceDN}}" read by * none
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
	b.WriteString(`dn: ` + BobDN + `
objectClass: inetOrgPerson
uid: ` + BobUID + `
cn: Bob
sn: Builder
userPassword: ` + BobPassword + `
employeeType: disabled

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

dn: cn=lockout,ou=policies,` + BaseDN + `
objectClass: pwdPolicy
objectClass: device
cn: lockout
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: ` + strconv.Itoa(CarolMaxFailure) + `
pwdLockoutDuration: ` + strconv.Itoa(int(CarolLockoutDuration/time.Second)) + `

dn: ` + LarryDN + `
objectClass: inetOrgPerson
uid: ` + LarryUID + `
cn: Larry
sn: Locked
userPassword: ` + LarryPassword + `
pwdAccountLockedTime: 000001010000Z

dn: ` + CarolDN + `
objectClass: inetOrgPerson
uid: ` + CarolUID + `
cn: Carol
sn: Lockout
userPassword: ` + CarolPassword + `
pwdPolicySubentry: cn=lockout,ou=policies,` + BaseDN + `

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
	ca := testenv.NewCA(t)
	f := &tlsFiles{CA: filepath.Join(dir, "ca.pem")}
	f.Cert, f.Key = ca.Issue(t, 2).Write(t, dir)
	if err := os.WriteFile(f.CA, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
