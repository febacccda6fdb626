// Package auth is the e2e stand-in for github.com/nebius/gosdk/auth (see ../README.md).
package auth

// BearerToken is an IAM token (never issued here).
type BearerToken struct{ Token string }

// PrivateKeyParser stands for the SDK's service-account key parser.
type PrivateKeyParser struct{}

// NewPrivateKeyParser returns an empty parser.
func NewPrivateKeyParser([]byte, string, string) PrivateKeyParser { return PrivateKeyParser{} }
