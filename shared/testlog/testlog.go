// Package testlog holds what tests need to read output that other goroutines (a logger, a
// child process's pipe) are still writing.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that writers and readers may use at once. The zero Buffer is
// ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
