package ledger

// AssumeFresh is the option Create passes for an id it minted itself.
func AssumeFresh() Option { return assumeFresh }
