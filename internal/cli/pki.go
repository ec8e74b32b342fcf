package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
)

func newPKICmd(app *App) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "pki",
		Short: "Create a CA and issue, list and revoke certificates",
		Long: `Certificates carry an explicit role: broker, node or client. A node certificate
can never act as a client, and no issued certificate can sign another.

  mco pki init                         create the CA in --dir
  mco pki issue broker broker1 --host broker1.example.net,10.0.0.5
  mco pki issue node web1.example.net
  mco pki issue client alice.mcollective
  mco pki request NAME                 on the node: key + CSR, the key never leaves
  mco pki sign node NAME.csr           on the CA: certify the CSR
  mco pki list
  mco pki revoke alice.mcollective     nodes and brokers refuse it without restart`,
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", "pki", "PKI directory")
	store := func() pki.Store { return pki.Store{Dir: dir} }
	var caName string
	initCmd := &cobra.Command{
		Use: "init", Short: "Create a new certificate authority", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ca, err := store().Init(caName)
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Stdout, "Created CA %q in %s (key %s, mode 0600)\n", ca.Cert.Subject.CommonName, store().CACertPath(), dir+"/ca.key")
			return nil
		},
	}
	initCmd.Flags().StringVar(&caName, "name", "Marionette CA", "CA common name")
	var hosts string
	issue := &cobra.Command{
		Use: "issue broker|node|client NAME", Short: "Issue a certificate and key", Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			role, err := pki.ParseRole(args[0])
			if err != nil {
				return err
			}
			cert, err := store().Issue(role, args[1], splitList(hosts))
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Stdout, "Issued %s certificate %q (serial %s)\n  certificate: %s\n  key:         %s\n",
				role, args[1], cert.SerialNumber.Text(16), store().CertPath(args[1]), store().KeyPath(args[1]))
			if role == pki.RoleClient && !strings.HasSuffix(args[1], ".mcollective") {
				fmt.Fprintf(app.Stderr, "note: %q does not match the default client allow list /\\.mcollective$/; nodes will refuse it unless security.certname_allowlist names it\n", args[1])
			}
			return nil
		},
	}
	issue.Flags().StringVar(&hosts, "host", "", "extra DNS names or IPs for a broker certificate, comma separated")
	list := &cobra.Command{
		Use: "list", Short: "List issued certificates", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			entries, err := store().List()
			if err != nil {
				return err
			}
			tw := newTable(app)
			tw.AppendHeader(table.Row{"Name", "Role", "Serial", "Expires", "Status"})
			for _, e := range entries {
				status := "valid"
				if e.Revoked {
					status = "REVOKED"
				}
				tw.AppendRow(table.Row{e.Name, e.Role, e.Serial, e.NotAfter.Format("2006-01-02"), status})
			}
			tw.Render()
			return nil
		},
	}
	revoke := &cobra.Command{
		Use: "revoke NAME", Short: "Revoke an issued certificate", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			cert, err := store().Revoke(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Stdout, "Revoked %q (serial %s). Distribute %s to brokers and nodes (security.revocation_file); they reload it without restart.\n",
				args[0], cert.SerialNumber.Text(16), store().RevokedPath())
			return nil
		},
	}
	request := &cobra.Command{
		Use: "request NAME", Short: "Create a key and a certificate request (CSR) for NAME", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			csr, key, err := pki.NewCSR(args[0])
			if err != nil {
				return err
			}
			if err := pki.WriteKey(args[0]+".key", key); err != nil {
				return err
			}
			if err := os.WriteFile(args[0]+".csr", csr, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(app.Stdout, "Wrote %s.key (keep it here) and %s.csr (send it to the CA: mco pki sign ROLE %s.csr)\n", args[0], args[0], args[0])
			return nil
		},
	}
	var allowPrivileged bool
	var expectName string
	sign := &cobra.Command{
		Use:   "sign broker|node|client FILE.csr",
		Short: "Certify a CSR",
		Long: `Certify the public key of a certificate request for the given role. The
name comes from the request, so it is shown first; --name makes signing fail
unless the request carries exactly that name. A client name that may act for
other callers (default /\.privileged\.mcollective$/) is refused unless
--privileged says that is intended.`,
		Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			role, err := pki.ParseRole(args[0])
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			name, hosts, err := pki.CSRSubject(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[1], err)
			}
			fmt.Fprintf(app.Stdout, "Request %s: name %q, extra names %v, to be signed as a %s certificate\n", args[1], name, hosts, role)
			if expectName != "" && name != expectName {
				return fmt.Errorf("%s asks for the name %q, not %q: not signed", args[1], name, expectName)
			}
			if privileged, _ := security.ParseMatcher(security.DefaultPrivileged); role == pki.RoleClient && privileged.Match(name) && !allowPrivileged {
				return fmt.Errorf("%q is a privileged name (it may act for any caller): not signed without --privileged", name)
			}
			cert, err := store().SignCSR(role, data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[1], err)
			}
			fmt.Fprintf(app.Stdout, "Signed %s certificate %q: %s (send it back with %s)\n", role, name, store().CertPath(cert.Subject.CommonName), store().CACertPath())
			return nil
		},
	}
	sign.Flags().StringVar(&expectName, "name", "", "refuse unless the request is for exactly this name")
	sign.Flags().BoolVar(&allowPrivileged, "privileged", false, "allow signing a privileged client name")
	cmd.AddCommand(initCmd, issue, list, revoke, request, sign)
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
