// Package bcryptmsg says why a basic_auth_users value is not a bcrypt hash
// without quoting any of it. crypto/bcrypt's own errors name the value's
// first byte ("hashedSecret started with 's'"): for a plain password pasted
// where the hash belongs, that byte is part of the secret, and start-up
// errors must carry none.
package bcryptmsg

import (
	"errors"

	"golang.org/x/crypto/bcrypt"
)

// Reason describes err, an error of bcrypt.Cost on the value, in words that
// hold nothing of the value but the cost of an otherwise valid hash.
func Reason(err error) string {
	var prefix bcrypt.InvalidHashPrefixError
	var version bcrypt.HashVersionTooNewError
	var cost bcrypt.InvalidCostError
	switch {
	case errors.Is(err, bcrypt.ErrHashTooShort):
		return "too short for a bcrypt hash"
	case errors.As(err, &prefix):
		return "it does not start with $ as a bcrypt hash ($2y$10$...) does"
	case errors.As(err, &version):
		return "an unknown bcrypt version"
	case errors.As(err, &cost):
		return err.Error() // "crypto/bcrypt: cost 99 is outside allowed range (4,31)": a number of the hash, no secret
	}
	return "not a bcrypt hash"
}
