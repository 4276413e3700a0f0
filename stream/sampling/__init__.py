"""Language down-sampling, annealing selection and the annealing mixture writer."""

from codekiln.stream.sampling.anneal import AnnealRouteStage
from codekiln.stream.sampling.downsample import DownsampleStage
from codekiln.stream.sampling.mixture import MixSpec, MixtureError, build_mixture

__all__ = ["AnnealRouteStage", "DownsampleStage", "MixSpec", "MixtureError", "build_mixture"]
