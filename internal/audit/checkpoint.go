package audit

import (
	"bufio"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/marionette/mco/internal/pki"
)

// DefaultCheckpointEvery is how many lines pass between signed checkpoints.
const DefaultCheckpointEvery = 100

// KindCheckpoint marks a signed chain checkpoint.
const KindCheckpoint Kind = "checkpoint"

// CheckpointRecord vouches, with the node's own key, for the chain up to the
// line before it: its signature covers that line's seq and hash, which
// chain every earlier line. A plain SHA-256 chain can be recomputed by
// anyone who can write the file; a checkpoint cannot be without the key.
type CheckpointRecord struct {
	Kind       Kind      `json:"kind"` // always KindCheckpoint
	Time       time.Time `json:"time"`
	Node       string    `json:"node"`
	SignedSeq  uint64    `json:"signed_seq"`
	SignedHash string    `json:"signed_hash"`
	Signature  []byte    `json:"signature"` // Ed25519 over checkpointMessage
	Cert       []byte    `json:"cert"`      // the node's DER certificate
}

// checkpointMessage is what a checkpoint signs.
func checkpointMessage(seq uint64, hash string) []byte {
	return []byte("marionette audit checkpoint\n" + strconv.FormatUint(seq, 10) + "\n" + hash)
}

// checkpointLocked appends a checkpoint for the current chain head; l.mu is
// held.
func (l *Log) checkpointLocked() error {
	if l.c.seq == 0 {
		return nil
	}
	sig, cert := l.opts.Checkpoint(checkpointMessage(l.c.seq, l.c.hash))
	body, err := encodeJSON(&CheckpointRecord{Kind: KindCheckpoint, Time: time.Now().UTC(), Node: l.opts.Node,
		SignedSeq: l.c.seq, SignedHash: l.c.hash, Signature: sig, Cert: cert})
	if err != nil {
		return err
	}
	if err := l.appendLocked(body); err != nil {
		return err
	}
	l.sinceCheckpoint = 0
	return nil
}

// CheckpointResult is what VerifyCheckpoints found.
type CheckpointResult struct {
	Lines       int    // lines read
	Checkpoints int    // valid checkpoints
	SignedSeq   uint64 // the last seq a checkpoint vouches for (0: none)
	Unsigned    int    // lines after the last checkpoint
	Node        string // the node that signed
}

// VerifyCheckpoints checks the signed checkpoints of one audit log file
// against the collective's CA: each must be signed by a node certificate
// from ca naming the node, vouch for exactly the line before it, and no run
// of lines without a checkpoint may be longer than every (the log was
// written with that interval; 0 means DefaultCheckpointEvery). A forged or
// removed line before the last checkpoint is therefore detected even when
// the SHA-256 chain was recomputed; the lines after it (fewer than every)
// are protected by the chain and the head file only. Run it after VerifyFile.
func VerifyCheckpoints(path string, ca *x509.Certificate, every int) (CheckpointResult, error) {
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	var res CheckpointResult
	f, err := os.Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	br := bufio.NewReaderSize(f, 64<<10)
	var prev chain
	run := 0
	for {
		line, complete, err := readLine(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		if !complete {
			return res, fmt.Errorf("line %d: torn", res.Lines+1)
		}
		res.Lines++
		var rec struct {
			Seq uint64 `json:"seq"`
			CheckpointRecord
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return res, fmt.Errorf("line %d: %w", res.Lines, err)
		}
		if rec.Kind == KindCheckpoint {
			if err := checkCheckpoint(&rec.CheckpointRecord, prev, roots); err != nil {
				return res, fmt.Errorf("line %d (seq %d): checkpoint invalid: %w", res.Lines, rec.Seq, err)
			}
			if res.Node != "" && rec.Node != res.Node {
				return res, fmt.Errorf("line %d (seq %d): checkpoint by %q in %q's log", res.Lines, rec.Seq, rec.Node, res.Node)
			}
			res.Node, res.SignedSeq = rec.Node, rec.SignedSeq
			res.Checkpoints++
			run = 0
		} else if run++; run > every {
			return res, fmt.Errorf("line %d (seq %d): %d lines without a signed checkpoint (one is written every %d): checkpoints removed or lines inserted", res.Lines, rec.Seq, run, every)
		}
		prev = chain{seq: rec.Seq, hash: hashLine(line)}
	}
	res.Unsigned = run
	return res, nil
}

func checkCheckpoint(cp *CheckpointRecord, prev chain, roots *x509.CertPool) error {
	if cp.SignedSeq != prev.seq || cp.SignedHash != prev.hash {
		return fmt.Errorf("vouches for seq %d %.12s..., but the line before it is seq %d %.12s...", cp.SignedSeq, cp.SignedHash, prev.seq, prev.hash)
	}
	cert, err := x509.ParseCertificate(cp.Cert)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("certificate of %q: %w", cert.Subject.CommonName, err)
	}
	if role, err := pki.RoleOf(cert); err != nil || role != pki.RoleNode {
		return fmt.Errorf("%q is not a node certificate", cert.Subject.CommonName)
	}
	if cert.Subject.CommonName != cp.Node {
		return fmt.Errorf("signed by %q for node %q", cert.Subject.CommonName, cp.Node)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok || !ed25519.Verify(pub, checkpointMessage(cp.SignedSeq, cp.SignedHash), cp.Signature) {
		return errors.New("bad signature")
	}
	return nil
}
