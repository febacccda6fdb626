// Package gosdk is the e2e toolchain's stand-in for github.com/nebius/gosdk: only the
// identifiers provider-kubernetes references, and New always fails (see README.md).
package gosdk

import (
	"context"
	"errors"

	"github.com/nebius/gosdk/auth"
)

// ErrUnavailable is what every entry point returns.
var ErrUnavailable = errors.New("Nebius credentials are not available in this e2e build")

// Option configures New (ignored).
type Option interface{ unused() }

type option struct{}

func (option) unused() {}

// CredentialsReader stands for the SDK's credential sources.
type CredentialsReader struct{}

// ServiceAccountReader stands for the SDK's service-account credentials.
func ServiceAccountReader(auth.PrivateKeyParser) CredentialsReader { return CredentialsReader{} }

// WithCredentials stands for the SDK's option of the same name.
func WithCredentials(CredentialsReader) Option { return option{} }

// SDK is never constructed.
type SDK struct{}

// New always fails.
func New(context.Context, ...Option) (*SDK, error) { return nil, ErrUnavailable }

// BearerToken always fails.
func (*SDK) BearerToken(context.Context) (auth.BearerToken, error) {
	return auth.BearerToken{}, ErrUnavailable
}
