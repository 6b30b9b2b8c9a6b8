// Package deadlines lists the pending time-based work the scheduler turns
// into commands: the expiry of each open invoice (LinkID empty) and of each
// active payment link. A row disappears when its subject is consumed,
// expired, revoked or the invoice is closed; the scheduler still issues
// commands idempotently, because this list may lag the log.
package deadlines
