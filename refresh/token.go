package refresh

import "github.com/flashbacktech/flashauth"

// MaxTokenLength bounds a presented GitHub refresh token.
const MaxTokenLength = flashauth.MaxTokenLength

// ValidToken reports whether s has the shape of a GitHub refresh token
// flashauth accepts: flashauth.ValidToken within MaxTokenLength.
func ValidToken(s string) bool { return flashauth.ValidToken(s, MaxTokenLength) }
