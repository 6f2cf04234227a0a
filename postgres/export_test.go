package postgres

import "time"

// Test-only views of the group-commit writers (batch.go).

// Queued returns how many claims and completions wait for their writer.
func (db *DB) Queued() (claims, completions int) {
	return db.claims.q.Len(), db.completions.q.Len()
}

// Batches returns how many batches the claim and completion writers ran.
func (db *DB) Batches() (claims, completions int64) {
	return db.claims.batches.Load(), db.completions.batches.Load()
}

// Fallbacks returns how many claim and completion batches failed as a whole
// and ran their calls one by one.
func (db *DB) Fallbacks() (claims, completions int64) {
	return db.claims.fallbacks.Load(), db.completions.fallbacks.Load()
}

// ClaimsClosed reports whether the claim writer refuses new calls.
func (db *DB) ClaimsClosed() bool {
	return db.claims.q.Closed()
}

// Writers is how many batches of one kind may be in flight at once.
const Writers = writers

// QueuedReads returns how many GetLedger and GetLineage calls wait for their
// reader.
func (db *DB) QueuedReads() (ledger, lineage int) {
	return db.ledgerReads.q.Len(), db.lineageReads.q.Len()
}

// ReadBatches returns how many batches the GetLedger and GetLineage readers
// ran.
func (db *DB) ReadBatches() (ledger, lineage int64) {
	return db.ledgerReads.batches.Load(), db.lineageReads.batches.Load()
}

// RolledBack reports whether a batch that failed with err is run again call
// by call.
var RolledBack = rolledBack

// SetRideWait sets how long AppendAudits waits for a ledger write to carry
// its rows; call it before the store is used.
func (db *DB) SetRideWait(d time.Duration) { db.riders.wait = d }

// WaitingRiders returns how many AppendAudits calls wait for a carrier.
func (db *DB) WaitingRiders() int {
	db.riders.mu.Lock()
	defer db.riders.mu.Unlock()
	return len(db.riders.waiting)
}

// QueuedLineageLedgerReads returns how many GetLineageLedger calls wait for
// their reader.
func (db *DB) QueuedLineageLedgerReads() int { return db.lineageLedgerReads.q.Len() }

// LineageLedgerBatches returns how many batches the GetLineageLedger
// readers ran.
func (db *DB) LineageLedgerBatches() int64 { return db.lineageLedgerReads.batches.Load() }
