package qrterm

import (
	"fmt"

	"rsc.io/qr/coding"
)

// bestMask encodes segs in version v at level l with each of the eight
// data masks and returns the code with the lowest penalty score of ISO/IEC
// 18004 §7.8.3, as the specification asks: rsc.io/qr alone always uses
// mask 0, which may leave large blocks of one colour or patterns that look
// like finder patterns to a reader.
func bestMask(v coding.Version, l coding.Level, segs []coding.Encoding) (*coding.Code, error) {
	var best *coding.Code
	bestScore := 0
	for m := coding.Mask(0); m < 8; m++ {
		p, err := coding.NewPlan(v, l, m)
		if err != nil {
			return nil, fmt.Errorf("qrterm: plan version %d: %w", v, err)
		}
		c, err := p.Encode(segs...)
		if err != nil {
			return nil, fmt.Errorf("qrterm: encode: %w", err)
		}
		if s := penalty(c); best == nil || s < bestScore {
			best, bestScore = c, s
		}
	}
	return best, nil
}

// penalty is the score of ISO/IEC 18004 §7.8.3.1: runs of five or more
// modules of one colour, 2×2 blocks of one colour, 1:1:3:1:1 finder-like
// patterns next to four light modules, and the imbalance of dark and light.
func penalty(c *coding.Code) int {
	n := c.Size
	// dark(x, y) for a row (transposed false) or a column (true).
	dark := func(i, j int, transposed bool) bool {
		if transposed {
			return c.Black(j, i)
		}
		return c.Black(i, j)
	}
	score, darks := 0, 0
	for _, tr := range []bool{false, true} {
		for j := 0; j < n; j++ {
			run := 1
			for i := 1; i <= n; i++ {
				if i < n && dark(i, j, tr) == dark(i-1, j, tr) {
					run++
					continue
				}
				if run >= 5 {
					score += 3 + run - 5
				}
				run = 1
			}
			// Finder-like 1011101, light modules (or the outside) on
			// four modules of either side.
			for i := -4; i+7 <= n+4; i++ {
				at := func(k int) bool { return k >= 0 && k < n && dark(k, j, tr) }
				if !(at(i) && !at(i+1) && at(i+2) && at(i+3) && at(i+4) && !at(i+5) && at(i+6)) {
					continue
				}
				lightBefore, lightAfter := true, true
				for k := 1; k <= 4; k++ {
					lightBefore = lightBefore && !at(i-k)
					lightAfter = lightAfter && !at(i+6+k)
				}
				if lightBefore {
					score += 40
				}
				if lightAfter {
					score += 40
				}
			}
		}
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			d := c.Black(x, y)
			if d {
				darks++
			}
			if x+1 < n && y+1 < n && d == c.Black(x+1, y) && d == c.Black(x, y+1) && d == c.Black(x+1, y+1) {
				score += 3
			}
		}
	}
	pct := darks * 100 / (n * n)
	dev := pct - 50
	if dev < 0 {
		dev = -dev
	}
	return score + 10*(dev/5)
}
