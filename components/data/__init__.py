"""Builders for the data layer: CloudNativePG clusters and the network rules around stores."""
