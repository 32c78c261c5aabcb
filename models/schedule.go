package models

import (
	"fmt"
	"math"
)

// Step is the index of a step in a sampler's schedule, 0-based. It is a
// position, not a noise level: see Sigma and Timestep.
type Step int

// Sigma is a noise level (the standard deviation of the noise in the latent).
type Sigma float64

// Timestep is the value the UNet takes as its timestep input: 0.25·ln σ.
type Timestep float64

// KarrasSigmas returns the Karras et al. (2022) schedule of n noise levels
// from max down to min with exponent rho, followed by a final 0, so that
// step i goes from sigmas[i] to sigmas[i+1].
func KarrasSigmas(n int, min, max, rho float64) ([]Sigma, error) {
	switch {
	case n < 1:
		return nil, fmt.Errorf("models: karras schedule: %d steps, need at least 1", n)
	case !(min > 0) || !(max > min):
		return nil, fmt.Errorf("models: karras schedule: need 0 < sigma_min < sigma_max, got %g and %g", min, max)
	case !(rho > 0):
		return nil, fmt.Errorf("models: karras schedule: rho %g must be positive", rho)
	}
	out := make([]Sigma, n+1)
	if n == 1 {
		out[0] = Sigma(max)
		return out, nil
	}
	lo, hi := math.Pow(min, 1/rho), math.Pow(max, 1/rho)
	for i := 0; i < n; i++ {
		r := float64(i) / float64(n-1)
		out[i] = Sigma(math.Pow(hi+r*(lo-hi), rho))
	}
	out[n] = 0
	return out, nil
}

// Timestep is the UNet's timestep input for σ: 0.25·ln σ.
func (s Sigma) Timestep() Timestep { return Timestep(0.25 * math.Log(float64(s))) }

// CIn is the input scaling 1/√(σ²+1) applied to the noisy latent.
func (s Sigma) CIn() float64 { return 1 / math.Sqrt(float64(s)*float64(s)+1) }

// CSkip is the skip weight 1/(σ²+1) of the v-prediction denoiser.
func (s Sigma) CSkip() float64 { return 1 / (float64(s)*float64(s) + 1) }

// COut is the output weight −σ/√(σ²+1) of the v-prediction denoiser, so that
// x̂₀ = CSkip·x + COut·v.
func (s Sigma) COut() float64 { return -float64(s) / math.Sqrt(float64(s)*float64(s)+1) }

// Sigma recovers σ from a timestep value (the inverse of Sigma.Timestep).
func (t Timestep) Sigma() Sigma { return Sigma(math.Exp(4 * float64(t))) }
