"""Getting the product to AWS and away again: the image, `sam deploy` per environment, a first run, destroy."""
