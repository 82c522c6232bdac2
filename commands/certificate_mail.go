package commands

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"mailplane/domain"
)

// The certificate e-mails: plain text a person can act on, composed when the outcome is
// recorded (the job only sends them).

const mailTime = "2006-01-02 15:04 MST"

func apiPath(v domain.VirtualHost) string {
	return "/api/v1/domains/" + v.Domain + "/virtual-hosts/" + v.Host + "/certificate"
}

func daysLeft(until, now time.Time) int {
	return int(math.Floor(until.Sub(now).Hours() / 24))
}

// issuedMail reports a certificate an ACME request obtained.
func issuedMail(v domain.VirtualHost, ev domain.CertificateIssued) Mail {
	c := v.Certificate
	verb := "issued"
	if ev.Renewal {
		verb = "renewed"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "A certificate for %s (domain %s) was %s through ACME and is installed.\n\n", v.Host, v.Domain, verb)
	fmt.Fprintf(&b, "  Host:       %s\n", v.Host)
	fmt.Fprintf(&b, "  Issuer:     %s\n", c.Issuer)
	fmt.Fprintf(&b, "  Serial:     %s\n", c.Serial)
	fmt.Fprintf(&b, "  Valid from: %s\n", c.NotBefore.UTC().Format(mailTime))
	fmt.Fprintf(&b, "  Expires:    %s (in %d days)\n", c.NotAfter.UTC().Format(mailTime), daysLeft(c.NotAfter, ev.At))
	fmt.Fprintf(&b, "  Chain:      %s, %d CA certificate(s), up to %s\n", ev.Chain, c.ChainLength, c.ChainRoot)
	fmt.Fprintf(&b, "  Renewal:    automatic from %s; an e-mail reports its outcome\n\n", c.RenewalDue().UTC().Format(mailTime))
	b.WriteString("What to do next\n\n")
	b.WriteString("  1. Nothing, if your proxy takes its certificates from mailplane: it serves this one from\n")
	b.WriteString("     its next TLS handshake on. A proxy that reads certificate files needs the new bundle\n")
	fmt.Fprintf(&b, "     (certificate and CA chain, no private key): GET %s/download,\n", apiPath(v))
	b.WriteString("     then a reload (on a single node, restart it; otherwise the node running the proxy).\n")
	fmt.Fprintf(&b, "  2. Check what clients see: openssl s_client -connect %s:443 -servername %s\n", v.Host, v.Host)
	fmt.Fprintf(&b, "  3. Keep the A record of %s pointing at the proxy: renewals are validated through it.\n", v.Host)
	subject := fmt.Sprintf("Certificate for %s %s, expires %s", v.Host, verb, c.NotAfter.UTC().Format("2006-01-02"))
	return Mail{Subject: subject, Body: b.String()}
}

// failedMail reports a failed ACME request; before is the host as it was while in flight.
func failedMail(before domain.VirtualHost, ev domain.CertificateIssuanceFailed) Mail {
	var b strings.Builder
	subject := fmt.Sprintf("Certificate for %s could not be issued", before.Host)
	if ev.Renewal {
		fmt.Fprintf(&b, "mailplane could not renew the certificate of %s (domain %s) through ACME.\n\n", before.Host, before.Domain)
		if c := before.Certificate; c != nil {
			left := daysLeft(c.NotAfter, ev.At)
			switch {
			case ev.At.After(c.NotAfter):
				subject = fmt.Sprintf("EXPIRED: the certificate of %s could not be renewed", before.Host)
				fmt.Fprintf(&b, "The current certificate EXPIRED on %s: clients refuse to connect to %s until this is fixed.\n",
					c.NotAfter.UTC().Format(mailTime), before.Host)
			default:
				if left <= 7 {
					subject = fmt.Sprintf("URGENT: the certificate of %s expires in %d days and could not be renewed", before.Host, left)
				} else {
					subject = fmt.Sprintf("Certificate of %s could not be renewed (expires in %d days)", before.Host, left)
				}
				fmt.Fprintf(&b, "The current certificate keeps serving until it expires on %s (in %d days).\n",
					c.NotAfter.UTC().Format(mailTime), left)
			}
			if ev.NextAttemptAt != nil {
				fmt.Fprintf(&b, "mailplane tries again at %s, and after each failure waits longer (up to a day).\n",
					ev.NextAttemptAt.UTC().Format(mailTime))
			}
			b.WriteString("You are warned again when 14, 7, 3 and 1 days are left, and when a renewal succeeds.\n\n")
		}
	} else {
		fmt.Fprintf(&b, "mailplane could not obtain a certificate for %s (domain %s) through ACME.\n\n", before.Host, before.Domain)
	}
	b.WriteString("What went wrong, and what to fix\n\n")
	for i, e := range ev.Errors {
		what, fix := explainACMEError(e, before.Host)
		fmt.Fprintf(&b, "  %d. %s\n", i+1, what)
		fmt.Fprintf(&b, "     Fix: %s\n", fix)
		fmt.Fprintf(&b, "     The error: %s\n\n", strings.TrimSpace(e))
	}
	if !ev.Renewal {
		fmt.Fprintf(&b, "When it is fixed, ask again: POST %s/acme\n", apiPath(before))
		fmt.Fprintf(&b, "After %d failures for one host within an hour, requests are refused for the rest of that hour\n", domain.MaxIssuanceFailures)
		b.WriteString("(as Let's Encrypt limits failed validations): fix first, then ask.\n")
	} else {
		fmt.Fprintf(&b, "You may also ask for a new certificate yourself once it is fixed: POST %s/acme\n", apiPath(before))
	}
	return Mail{Subject: subject, Body: b.String()}
}

var acmeProblemRE = regexp.MustCompile(`urn:ietf:params:acme:error:([A-Za-z]+)`)

// explainACMEError says what an ACME error means for an administrator and how to fix it.
func explainACMEError(e, host string) (what, fix string) {
	challenge := fmt.Sprintf("http://%s/.well-known/acme-challenge/", host)
	m := acmeProblemRE.FindStringSubmatch(e)
	if m == nil {
		if strings.HasPrefix(e, "the CA's certificate does not verify") {
			return "The CA delivered a certificate that does not verify for this host.",
				"this is the CA's (or its configuration's) fault: check MAILPLANE_ACME_DIRECTORY and ask again later."
		}
		return "mailplane could not complete the order with the CA (it could not be reached, or answered with an error), even after retrying.",
			"check that the CA (MAILPLANE_ACME_DIRECTORY) is reachable from mailplane, then ask again."
	}
	switch m[1] {
	case "connection":
		return fmt.Sprintf("The CA could not connect to %s to check the HTTP-01 challenge.", host),
			fmt.Sprintf("make sure %s has an A record pointing at this service's public address and that port 80 there reaches mailplane (the CA fetches %s...).", host, challenge)
	case "dns":
		return fmt.Sprintf("The CA could not resolve %s.", host),
			fmt.Sprintf("add an A record for %s in the domain's DNS, pointing at this service, and wait until it is published.", host)
	case "unauthorized", "incorrectResponse":
		return fmt.Sprintf("The CA reached a server for %s that did not give the challenge's answer.", host),
			fmt.Sprintf("the A record of %s points at another server, or port 80 does not reach mailplane: a proxy in front must pass %s... on to mailplane.", host, challenge)
	case "rejectedIdentifier":
		return fmt.Sprintf("The CA refuses to issue certificates for %s.", host),
			"the name is on the CA's block list or not a public name: use another virtual host name."
	case "caa":
		return fmt.Sprintf("A CAA record in the DNS of %s forbids this CA.", host),
			"add a CAA record allowing the CA (for Let's Encrypt: 0 issue \"letsencrypt.org\"), or remove the CAA record."
	case "rateLimited":
		return "The CA's rate limit was reached.", "wait as long as the error says, then ask again."
	case "tls":
		return fmt.Sprintf("The CA could not set up TLS with %s while validating.", host),
			fmt.Sprintf("the server at %s redirects the challenge to HTTPS with a broken certificate: let %s... answer over plain HTTP.", host, challenge)
	}
	return "The CA refused the request (" + m[1] + ").", "read the CA's error below, fix what it names, then ask again."
}
