// Command gen writes the tiny model's ONNX graphs (unet.onnx, encoder.onnx,
// decoder.onnx) for the default config:
//
//	go run ./models/tiny/gen -out models/tiny
//
// The output is the same, byte for byte, on every run.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/vdpp/vdpp/models/tiny"
)

func main() {
	out := flag.String("out", "models/tiny", "directory to write the .onnx files into")
	cfg := tiny.DefaultConfig()
	flag.IntVar(&cfg.Templates, "templates", cfg.Templates, "number of template clips")
	flag.IntVar(&cfg.Frames, "frames", cfg.Frames, "frames per clip")
	flag.IntVar(&cfg.Height, "height", cfg.Height, "latent height (pixels are 8×)")
	flag.IntVar(&cfg.Width, "width", cfg.Width, "latent width (pixels are 8×)")
	flag.IntVar(&cfg.ExtraChannels, "extra-channels", cfg.ExtraChannels, "channels of the UNet-like extra compute (0: none)")
	flag.IntVar(&cfg.ExtraBlocks, "extra-blocks", cfg.ExtraBlocks, "blocks of the UNet-like extra compute")
	flag.BoolVar(&cfg.FP16, "fp16", cfg.FP16, "float16 inputs and outputs")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	if err := tiny.WriteFiles(*out, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
