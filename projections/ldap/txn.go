package ldap

import (
	"errors"
	"fmt"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// RFC 5805 LDAP transactions, as slapd 2.5 implements them.
const (
	oidStartTxn   = "1.3.6.1.1.21.1"
	oidTxnControl = "1.3.6.1.1.21.2"
	oidEndTxn     = "1.3.6.1.1.21.3"
)

// txnControl marks an operation as part of a transaction. slapd's transaction identifier is
// empty, and go-ldap's ControlString leaves an empty value out altogether ("no transaction
// identifier provided"), so this control always encodes its value, empty or not.
type txnControl struct{ id string }

func (c txnControl) GetControlType() string { return oidTxnControl }

func (c txnControl) Encode() *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oidTxnControl, "Control Type"))
	p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "Criticality"))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, c.id, "Transaction Identifier"))
	return p
}

func (c txnControl) String() string { return fmt.Sprintf("transaction %q", c.id) }

// txn is an open transaction on a connection. Its operations are answered at once; the server
// applies them all or none at the end, and reports the real outcome there.
type txn struct {
	conn     *goldap.Conn
	id       string
	controls []goldap.Control
}

func startTxn(conn *goldap.Conn) (*txn, error) {
	resp, err := conn.Extended(goldap.NewExtendedRequest(oidStartTxn, nil))
	if err != nil {
		return nil, fmt.Errorf("ldap: start transaction: %w", err)
	}
	var id string
	if resp.Value != nil {
		id = string(resp.Value.ByteValue) // slapd's is empty
	}
	return &txn{conn: conn, id: id, controls: []goldap.Control{txnControl{id: id}}}, nil
}

// endPause is how long a transaction waits between its last operation and its end. slapd 2.5.13
// answers a transaction's operations at once and can crash (a NULL dereference) when the end
// arrives while the worker of the last operation is still finishing it: back-to-back
// transactions crashed it within a few hundred; with a pause of 1 ms, 3,000 did not, 5 ms leaves
// a margin on a busy machine. docs/directory.md says more.
const endPause = 5 * time.Millisecond

// end commits (or aborts) the transaction, endPause after its last operation.
func (t *txn) end(commit bool) error {
	time.Sleep(endPause)
	v := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Txn End Request")
	if !commit {
		v.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "Commit"))
	}
	v.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, t.id, "Identifier"))
	if _, err := t.conn.Extended(goldap.NewExtendedRequest(oidEndTxn, v)); err != nil {
		if commit {
			return fmt.Errorf("ldap: commit transaction: %w", err)
		}
		return fmt.Errorf("ldap: abort transaction: %w", err)
	}
	return nil
}

// dataConflict reports whether the directory refused an operation because it did not hold what
// the projection thought (an entry missing or already there): the directory was changed behind
// the projection's back, and the batch is applied again against what it really holds.
func dataConflict(err error) bool {
	for _, code := range []uint16{goldap.LDAPResultNoSuchObject, goldap.LDAPResultEntryAlreadyExists,
		goldap.LDAPResultNoSuchAttribute, goldap.LDAPResultAttributeOrValueExists, goldap.LDAPResultObjectClassViolation,
		goldap.LDAPResultNotAllowedOnNonLeaf} {
		if goldap.IsErrorWithCode(err, code) {
			return true
		}
	}
	return false
}

// unavailable reports whether an error means the directory cannot be reached right now (as
// opposed to refusing what was sent).
func unavailable(err error) bool {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return true
	}
	switch le.ResultCode {
	case goldap.ErrorNetwork, goldap.LDAPResultUnavailable, goldap.LDAPResultBusy, goldap.LDAPResultServerDown,
		goldap.LDAPResultConnectError, goldap.LDAPResultTimeout, goldap.LDAPResultUnwillingToPerform:
		return true
	}
	return false
}

// oidAssertion is RFC 4528's assertion control: the operation applies only if the entry matches
// the filter.
const oidAssertion = "1.3.6.1.1.12"

// assertionControl makes an operation conditional on its entry matching a filter. The
// checkpoint's modify carries one asserting the checkpoint the writer read, so that of two
// processes that both believe they run the projection (one has lost its lock and does not know
// it yet) only the first transaction commits: the other's fails whole, entries included.
type assertionControl struct{ filter *ber.Packet }

func newAssertion(filter string) (assertionControl, error) {
	p, err := goldap.CompileFilter(filter)
	if err != nil {
		return assertionControl{}, fmt.Errorf("ldap: assertion %s: %w", filter, err)
	}
	return assertionControl{filter: p}, nil
}

func (c assertionControl) GetControlType() string { return oidAssertion }

func (c assertionControl) Encode() *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oidAssertion, "Control Type"))
	p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "Criticality"))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(c.filter.Bytes()), "Assertion"))
	return p
}

func (c assertionControl) String() string { return "assertion" }
