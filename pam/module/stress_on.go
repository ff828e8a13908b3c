//go:build otpgate_gcstress

package main

import (
	"runtime"
	"sync"
)

// stress makes every authentication do what is unsafe in a Go runtime that
// was started before its host forked: allocate heavily, start and end
// goroutines, and force garbage collections. It proves that the C loader
// starts the runtime only in the process that authenticates. This build tag
// is for that test only, never for a release.
func stress() {
	var wg sync.WaitGroup
	sink := make(chan int, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(seed int) {
			defer wg.Done()
			total := 0
			for i := 0; i < 256; i++ {
				b := make([]byte, 64<<10)
				b[i%len(b)] = byte(seed + i)
				total += int(b[i%len(b)])
				if i%64 == 0 {
					runtime.Gosched()
				}
			}
			sink <- total
		}(g)
	}
	runtime.GC()
	wg.Wait()
	close(sink)
	for range sink {
	}
	runtime.GC()
	runtime.GC()
}
