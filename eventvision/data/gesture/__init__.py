"""DVS128 Gesture (tonic and original aedat 3.1 layouts) and synthetic event gestures."""
