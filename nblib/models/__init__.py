"""Vision-language backbones and the heads built on them."""
