"""SoftClust: sort field images into folders with hypersurface clustering."""

__version__ = "0.1.0"
APP_NAME = "SoftClust"
