package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/google/uuid"
)

// NewID returns a prefixed, time-ordered id such as "inv_0190f5…": a UUIDv7
// in lower-case hex without dashes, so ids sort by creation time both as
// strings and in the database.
func NewID(prefix string) string {
	u := uuid.Must(uuid.NewV7())
	return prefix + "_" + strings.ReplaceAll(u.String(), "-", "")
}

// DerivedID returns a prefixed id that is a pure function of seed. It is
// used where a retried request must land on the same object (idempotency
// keys, reference ids) without a lookup table that could disagree with the
// log.
func DerivedID(prefix, seed string) string {
	sum := sha256.Sum256([]byte(prefix + "\x00" + seed))
	return prefix + "_" + hex.EncodeToString(sum[:16])
}
