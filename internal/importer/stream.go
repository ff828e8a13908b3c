package importer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// MaxLineLength bounds one line of a usersfile or of /etc/passwd. It is
// the size the importer once read of a whole file, so every line accepted
// then is accepted now; a longer line is reported, naming it, and the
// rest of the file is still checked.
const MaxLineLength = 64 << 10

// lineReader splits r into lines of at most MaxLineLength bytes (without
// the '\n'), in a buffer of its own that close clears, so that the secrets
// on the lines do not outlive the import in memory.
type lineReader struct {
	r          io.Reader
	buf        []byte
	start, end int   // buf[start:end] is read but not yet returned
	err        error // from r, once seen
	skipping   bool  // inside a line longer than MaxLineLength
	line       int   // number of the line last returned
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: r, buf: make([]byte, MaxLineLength+1)}
}

// next returns the next line, valid until the following call. A line
// longer than MaxLineLength comes back as tooLong with no content. At the
// end it returns io.EOF, or the read error.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	for {
		if i := bytes.IndexByte(lr.buf[lr.start:lr.end], '\n'); i >= 0 {
			line = lr.buf[lr.start : lr.start+i]
			lr.start += i + 1
			lr.line++
			if lr.skipping {
				lr.skipping = false
				return nil, true, nil
			}
			return line, false, nil
		}
		if lr.err != nil {
			if !errors.Is(lr.err, io.EOF) {
				return nil, false, lr.err
			}
			if lr.start == lr.end && !lr.skipping {
				return nil, false, io.EOF
			}
			// A last line without '\n'.
			line = lr.buf[lr.start:lr.end]
			lr.start = lr.end
			lr.line++
			if lr.skipping || len(line) > MaxLineLength {
				lr.skipping = false
				return nil, true, nil
			}
			return line, false, nil
		}
		if lr.start == 0 && lr.end == len(lr.buf) {
			// A full buffer and no '\n': drop what was read of this line.
			clear(lr.buf)
			lr.end, lr.skipping = 0, true
		} else if lr.start > 0 {
			n := copy(lr.buf, lr.buf[lr.start:lr.end])
			clear(lr.buf[n:lr.end])
			lr.start, lr.end = 0, n
		}
		n, err := lr.r.Read(lr.buf[lr.end:])
		lr.end += n
		if err != nil {
			lr.err = err
		}
	}
}

// close clears the buffer.
func (lr *lineReader) close() { clear(lr.buf) }

// blockSize is the unit in which a file's content is fingerprinted between
// the check and the import.
const blockSize = 64 << 10

// ErrChanged means that a file changed between the pass that checked it
// and the pass that imports it (or while it was being checked).
var ErrChanged = errors.New("file changed after it was checked")

// changedError is an ErrChanged with its own words.
type changedError struct{ msg string }

func (e *changedError) Error() string        { return e.msg }
func (e *changedError) Is(target error) bool { return target == ErrChanged }

// blockRecorder passes r through and records the SHA-256 of every
// blockSize bytes of it (and of the last, shorter block).
type blockRecorder struct {
	r    io.Reader
	h    hash.Hash
	n    int // bytes in h
	sums [][sha256.Size]byte
}

func newBlockRecorder(r io.Reader) *blockRecorder {
	return &blockRecorder{r: r, h: sha256.New()}
}

func (b *blockRecorder) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	for q := p[:n]; len(q) > 0; {
		k := min(len(q), blockSize-b.n)
		b.h.Write(q[:k])
		b.n += k
		q = q[k:]
		if b.n == blockSize {
			b.flush()
		}
	}
	if err == io.EOF && b.n > 0 {
		b.flush()
	}
	return n, err
}

func (b *blockRecorder) flush() {
	var s [sha256.Size]byte
	b.h.Sum(s[:0])
	b.sums = append(b.sums, s)
	b.h.Reset()
	b.n = 0
}

// blockVerifier reads r a block at a time and releases a block only once
// its SHA-256 matches the one recorded for it, so that nothing read
// through it differs from what was checked. A difference, including a
// longer or shorter file, is ErrChanged.
type blockVerifier struct {
	r        io.Reader
	sums     [][sha256.Size]byte
	i        int // blocks verified
	buf      []byte
	pos, end int
	err      error
}

func newBlockVerifier(r io.Reader, sums [][sha256.Size]byte) *blockVerifier {
	return &blockVerifier{r: r, sums: sums, buf: make([]byte, blockSize)}
}

func (v *blockVerifier) Read(p []byte) (int, error) {
	if v.pos == v.end {
		if v.err != nil {
			return 0, v.err
		}
		clear(v.buf[:v.end])
		v.pos, v.end = 0, 0
		n, err := io.ReadFull(v.r, v.buf)
		switch {
		case n == 0 && err == io.EOF:
			if v.i != len(v.sums) {
				v.err = &changedError{"changed after it was checked (it is shorter now)"}
			} else {
				v.err = io.EOF
			}
			return 0, v.err
		case err != nil && err != io.ErrUnexpectedEOF:
			v.err = err
			return 0, err
		case v.i >= len(v.sums) || sha256.Sum256(v.buf[:n]) != v.sums[v.i]:
			clear(v.buf[:n])
			v.err = &changedError{fmt.Sprintf("changed after it was checked (from byte %d on)", int64(v.i)*blockSize)}
			return 0, v.err
		}
		v.i++
		v.end = n
	}
	n := copy(p, v.buf[v.pos:v.end])
	v.pos += n
	return n, nil
}

// close clears the buffer.
func (v *blockVerifier) close() { clear(v.buf) }

// stamp is what fstat tells of a file's identity and last change.
type stamp struct {
	dev, ino    uint64
	size        int64
	nlink       uint64
	mtime, ctim unix.Timespec
}

// unchanged reports whether a file stamped s earlier, now stamped now, can
// have kept its content: same size and modification time, and the same
// inode change time unless the file has no name left (replaced by rename,
// as pam_oath and useradd write their files: removing the name changes
// it, and no one can open the file to write it any more).
func (s stamp) unchanged(now stamp) bool {
	return s.dev == now.dev && s.ino == now.ino && s.size == now.size && s.mtime == now.mtime &&
		(now.nlink == 0 || s.ctim == now.ctim)
}

func stampOf(f *os.File) (stamp, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return stamp{}, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	return stamp{dev: st.Dev, ino: st.Ino, size: st.Size, nlink: uint64(st.Nlink), mtime: st.Mtim, ctim: st.Ctim}, nil
}

// twoPassFile is a file read twice: once to check every line, then again
// to import, with the guarantee that the second pass reads exactly the
// bytes the first one checked. Nothing of the content is kept in between
// but a SHA-256 per 64 KiB.
type twoPassFile struct {
	f       *os.File
	stamp   stamp
	sums    [][sha256.Size]byte
	checked bool
}

// OpenAdminFile opens a file the administrator named (a pam_oath
// usersfile, /etc/passwd) for reading: a regular file, opened with
// O_NONBLOCK so that a FIFO cannot block. It may be of any size.
func OpenAdminFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return f, nil
}

// firstPass reads the file from the start through scan, recording its
// blocks, and fails if the file changed while it was read.
func (t *twoPassFile) firstPass(scan func(io.Reader) error) error {
	before, err := stampOf(t.f)
	if err != nil {
		return err
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read %s: %w", t.f.Name(), err)
	}
	rec := newBlockRecorder(t.f)
	if err := scan(rec); err != nil {
		return err
	}
	after, err := stampOf(t.f)
	if err != nil {
		return err
	}
	if !before.unchanged(after) {
		return &changedError{t.f.Name() + " changed while it was being checked"}
	}
	t.stamp, t.sums, t.checked = after, rec.sums, true
	return nil
}

// secondPass reads the file again through scan, which sees only blocks
// identical to those the first pass checked.
func (t *twoPassFile) secondPass(scan func(io.Reader) error) error {
	if !t.checked {
		return fmt.Errorf("%s: importing before checking", t.f.Name())
	}
	now, err := stampOf(t.f)
	if err != nil {
		return err
	}
	if !t.stamp.unchanged(now) {
		return &changedError{t.f.Name() + " changed after it was checked"}
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read %s: %w", t.f.Name(), err)
	}
	v := newBlockVerifier(t.f, t.sums)
	defer v.close()
	if err := scan(v); err != nil {
		if errors.Is(err, ErrChanged) {
			return fmt.Errorf("%s %w", t.f.Name(), err)
		}
		return err
	}
	return nil
}
