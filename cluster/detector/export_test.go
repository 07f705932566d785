package detector

// SignForTest appends the MAC to body, so fuzzing reaches the parser.
func SignForTest(body, key []byte) []byte {
	return append(append([]byte{}, body...), mac(body, key)...)
}
