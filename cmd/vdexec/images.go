package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vdpp/vdpp/cmd/internal/cliutil"
	"github.com/vdpp/vdpp/models"
	"github.com/vdpp/vdpp/models/family"
	"github.com/vdpp/vdpp/models/images"
	"github.com/vdpp/vdpp/plan"
)

// flagImages names the conditioning images.
const flagImages = "images"

// imagesFlag is the --images flag of run, profile, validate and worker.
func imagesFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    flagImages,
		EnvVars: cliutil.Env(envPrefix, flagImages),
		Usage: "conditioning images `FILE,FILE,...` (PNG or JPEG): sample i uses image i mod N, resized to the model's " +
			"pixel size (8·latent h × 8·latent w); needed for family svd, replaces the tiny model's templates for family tiny",
	}
}

// parseImageList splits the value of --images into file names; an empty
// list or an empty entry is a usage error.
func parseImageList(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, cliutil.Usage(fmt.Errorf("--%s is empty: give one or more PNG or JPEG files, comma-separated", flagImages))
	}
	files := strings.Split(s, ",")
	for i, f := range files {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, cliutil.Usage(fmt.Errorf("--%s %q: entry %d is empty: give PNG or JPEG files separated by single commas", flagImages, s, i+1))
		}
		files[i] = f
	}
	return files, nil
}

// conditioning returns the conditioning images of a run of p: the files
// of --images (also returned, for validate to list), resized to the
// plan's pixel size, else the built-in images of the plan's model family
// (files nil). Nil without --images for a family without built-in images
// (checkRunnable refuses those first).
func conditioning(c *cli.Context, p *plan.Plan) (set *models.ImageSet, files []string, err error) {
	shape := models.Shape{Frames: p.Model.Frames, Channels: p.Model.Latent.Channels, Height: p.Model.Latent.Height, Width: p.Model.Latent.Width}
	if !c.IsSet(flagImages) {
		if !family.HasImages(p.Model.Family) {
			return nil, nil, nil
		}
		if set, err = family.Images(p.Model.Family, shape); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p.File, err)
		}
		return set, nil, nil
	}
	if files, err = parseImageList(c.String(flagImages)); err != nil {
		return nil, nil, err
	}
	if set, err = images.Load(files, 8*shape.Height, 8*shape.Width); err != nil {
		return nil, nil, eachPrefixed("--"+flagImages, err)
	}
	return set, files, nil
}

// eachPrefixed puts prefix in front of err, or of each error that err
// joins, so that every line of the message names the flag.
func eachPrefixed(prefix string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = fmt.Errorf("%s: %w", prefix, e)
	}
	return errors.Join(out...)
}
