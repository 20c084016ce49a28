# Thin aliases for ./dev, which also works on a machine without make.
.PHONY: serve test bench
serve:
	./dev serve
test:
	./dev test
bench:
	./dev bench
