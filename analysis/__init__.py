"""Figures and fits of the paper reproduction, from plain arrays read out of flowkit's
HDF5 stores: ``style`` (palette, rcParams, saving), ``sphere`` (azimuth-pitch
coordinates), ``figures`` (the paper's Figures 3-5 and the theorem/depth checks)."""
