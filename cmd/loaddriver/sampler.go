package main

import "time"

// sampler calls a sample function on a ticker from its own goroutine, and once more when
// stopped, so that the series ends with the state at the end of the run.
type sampler struct {
	done    chan struct{}
	stopped chan struct{}
}

func startSampler(every time.Duration, sample func()) *sampler {
	s := &sampler{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(s.stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return s
}

// stop takes the last sample and returns once no sample runs any more: what the sample
// function wrote can then be read without a lock.
func (s *sampler) stop() {
	close(s.done)
	<-s.stopped
}
