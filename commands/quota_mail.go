package commands

import (
	"fmt"
	"strings"

	"mailplane/domain"
)

// quotaMail is the warning of a crossing: plain text that says whose usage, how much of what
// limit, and what the reader can do about it.
func quotaMail(x domain.QuotaCrossing, d domain.Domain) Mail {
	pct := "100+"
	if x.LimitBytes > 0 {
		pct = fmt.Sprintf("%.1f", float64(x.UsedBytes)*100/float64(x.LimitBytes))
	}
	var b strings.Builder
	var subject string
	switch x.Scope {
	case domain.QuotaScopeDomain:
		subject = fmt.Sprintf("Domain %s has used %s%% of its mailbox quota", d.Name, pct)
		fmt.Fprintf(&b, "The mailboxes of the domain %s together have reached the warning level of their quota.\n\n", d.Name)
		fmt.Fprintf(&b, "  Domain:       %s\n", d.Name)
		fmt.Fprintf(&b, "  Used:         %s (%s%%)\n", humanBytes(x.UsedBytes), pct)
		fmt.Fprintf(&b, "  Domain quota: %s\n", humanBytes(x.LimitBytes))
		fmt.Fprintf(&b, "  Warning at:   %d%%\n\n", x.WarnPercent)
		b.WriteString("What to do\n\n")
		b.WriteString("  1. See which mailboxes use the most: GET /api/v1/domains/" + d.Name + "/quota\n")
		b.WriteString("     (sorted by percent used, highest first).\n")
		b.WriteString("  2. Ask the largest users to delete or archive old mail, or lower their own quotas.\n")
		b.WriteString("  3. Or raise the domain's quota: PATCH /api/v1/domains/" + d.Name + " {\"limits\":{\"domain_quota_bytes\":N}}.\n\n")
		b.WriteString("You are warned again only after the domain's usage has dropped below the warning level and reached it again.\n")
	default:
		subject = fmt.Sprintf("Mailbox %s has used %s%% of its quota", x.Name, pct)
		fmt.Fprintf(&b, "The mailbox %s has reached the warning level of its quota.\n\n", x.Name)
		fmt.Fprintf(&b, "  Mailbox:    %s\n", x.Name)
		fmt.Fprintf(&b, "  Used:       %s (%s%%)\n", humanBytes(x.UsedBytes), pct)
		fmt.Fprintf(&b, "  Quota:      %s\n", humanBytes(x.LimitBytes))
		fmt.Fprintf(&b, "  Warning at: %d%%\n\n", x.WarnPercent)
		b.WriteString("What to do\n\n")
		b.WriteString("  1. Delete mail you no longer need, large attachments first, and empty the Trash and Junk folders.\n")
		b.WriteString("  2. Or archive old mail outside the mailbox.\n")
		b.WriteString("  3. If the mailbox needs more room, ask your administrator to raise its quota.\n\n")
		b.WriteString("When the mailbox is full, new mail for it is refused. You are warned again only after its usage\n")
		b.WriteString("has dropped below the warning level and reached it again.\n")
	}
	return Mail{Subject: subject, Body: b.String()}
}

// humanBytes writes a size in binary units, with the exact byte count beside.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", float64(n)/float64(div), "KMGTPE"[exp], n)
}
