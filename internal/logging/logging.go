// Package logging builds the daemons' slog loggers from the log.level,
// log.format and log.file settings, and reopens log.file on demand so that
// logrotate can move it away (the daemons reopen on SIGHUP).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// Settings are the log.* keys of a role's configuration.
type Settings struct {
	Level  string // debug, info, warn or error (default info)
	Format string // text or json (default text)
	File   string // "" logs to the given stderr
}

// Logger is a configured logger and the file behind it, if any.
type Logger struct {
	*slog.Logger
	file *File
}

// New builds a logger from s; with no File it writes to stderr.
func New(s Settings, stderr io.Writer) (*Logger, error) {
	var level slog.Level
	if s.Level == "" {
		s.Level = "info"
	}
	if err := level.UnmarshalText([]byte(s.Level)); err != nil {
		return nil, fmt.Errorf("log.level %q: use debug, info, warn or error", s.Level)
	}
	l := &Logger{}
	w := stderr
	if s.File != "" {
		f, err := OpenFile(s.File)
		if err != nil {
			return nil, err
		}
		l.file, w = f, f
	}
	opts := &slog.HandlerOptions{Level: level}
	switch s.Format {
	case "", "text":
		l.Logger = slog.New(slog.NewTextHandler(w, opts))
	case "json":
		l.Logger = slog.New(slog.NewJSONHandler(w, opts))
	default:
		l.Close()
		return nil, fmt.Errorf("log.format %q: use text or json", s.Format)
	}
	return l, nil
}

// Reopen reopens log.file (a no-op when logging to stderr).
func (l *Logger) Reopen() error {
	if l.file == nil {
		return nil
	}
	return l.file.Reopen()
}

// Close closes log.file, if any.
func (l *Logger) Close() error {
	if l.file == nil {
		return nil
	}
	return l.file.Close()
}

// File is an append-only log file that can be reopened at its path, after
// logrotate renamed it, without losing or splitting a record: writes and the
// reopen are serialized.
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// OpenFile opens (or creates, mode 0640) the log file at path for appending.
func OpenFile(path string) (*File, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("log.file: %w", err)
	}
	return f, nil
}

// Write appends p; slog handlers write one record per call.
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return 0, os.ErrClosed
	}
	return f.f.Write(p)
}

// Reopen opens the path afresh and closes the old file. If the path cannot
// be opened, logging goes on into the old file and the error is returned.
func (f *File) Reopen() error {
	nf, err := openAppend(f.path)
	if err != nil {
		return err
	}
	f.mu.Lock()
	old := f.f
	f.f = nf
	f.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file; later writes fail.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	f.f = nil
	return err
}
