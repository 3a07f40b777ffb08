# Neural networks from scratch, one literate C++ file per model.
#
#   make            build every program and make sure data/ holds MNIST
#   make test       build and run the test suite (ends with "N passed, N failed");
#                   first `make check-torch` when python3 can import torch
#   make check-torch  our programs against PyTorch, step for step (tests/reference/)
#   make bench      measure this machine's FMA peak, then time every program
#                   (MARCH=x86-64-v3: the same for an AVX2 build, see below)
#   make docs       render the tutorial
#   make pdf        the tutorial as a PDF (headless Chromium)
#   make clean      remove what the build made (data/ is kept)
#
# CXX, CXXFLAGS and LDFLAGS are yours to override; what the programs need
# (the C++ standard, OpenMP, zlib, warnings) is appended in the recipes, so an
# override keeps it. The default is -O3 -march=native: the binaries are tuned
# for the machine that builds them and may not run on an older CPU.
#   make SANITIZE=1   address + undefined-behaviour sanitizers, with -g
#   make WERROR=1     warnings are errors (CI)
#   make CHECK_TORCH=0 test   the test suite without the PyTorch check
#   PYTHON=...        the Python with torch (default /usr/bin/python3, Debian's)
#   make BLAS=1       link the MLP against OpenBLAS's cblas_sgemm instead of its
#                     built-in matrix products (the default, BLAS=0: on MNIST
#                     the built-in ones skip the black pixels and are faster)
#   make OPENMP=0     no OpenMP: every program single-threaded (the default is
#                     OpenMP when the compiler can build with it; see below)
#   make BUILDDIR=DIR put the programs and tests/run_tests (with its objects)
#                     under DIR/ instead of here, e.g. a cross build beside the
#                     native one (README, "Platforms"); `make test` and the
#                     other targets use the build here

CXX      ?= g++
CXXFLAGS ?= -O3 -march=native
LDFLAGS  ?=

# A '#' for the probes below: inside $(shell ...), make 4.3 keeps a '\#' as it
# is (the compiler then sees '\#include', which -E does not reject), and make
# 3.81 (macOS) would read a bare '#' as a comment.
HASH := \#

# OpenMP and cblas: where they come from. macOS (Darwin): Apple's clang refuses
# -fopenmp, but takes Homebrew's libomp (brew install libomp) through the
# preprocessor; cblas is part of the Accelerate framework. Elsewhere (Linux):
# -fopenmp, and OpenBLAS's cblas.
ifeq ($(shell uname -s),Darwin)
OMP_PREFIX  := $(shell brew --prefix libomp 2>/dev/null)
OMP_FLAGS   := -Xpreprocessor -fopenmp -I$(OMP_PREFIX)/include
OMP_LIBS    := -L$(OMP_PREFIX)/lib -lomp
BLAS_HEADER := Accelerate/Accelerate.h
BLAS_LIBS   := -framework Accelerate
else
OMP_FLAGS   := -fopenmp
OMP_LIBS    :=
BLAS_HEADER := cblas.h
BLAS_LIBS   := -lopenblas
endif

# OPENMP=1 builds with OpenMP, OPENMP=0 without: each program then runs on one
# thread (--threads is accepted and changes nothing but attention's split of
# a batch, run part after part), with the same bits as --threads 1 of the
# OpenMP build; -fopenmp-simd keeps the `omp simd` loops vectorised alike.
# Unset, make asks the compiler once whether it builds and links an OpenMP
# program, and falls back to OPENMP=0 if not, saying so in one line.
ifeq ($(origin OPENMP),undefined)
OPENMP := $(shell printf '$(HASH)include <omp.h>\nint main() { return omp_get_max_threads() < 1; }\n' | \
  $(CXX) $(OMP_FLAGS) -x c++ - -o /dev/null $(OMP_LIBS) >/dev/null 2>&1 && echo 1 || echo 0)
ifeq ($(OPENMP),0)
$(info no OpenMP: building single-threaded ($(CXX) cannot build an OpenMP program; README, "Platforms"))
endif
endif
ifneq ($(OPENMP),1)
OMP_FLAGS := $(shell echo 'int main() {}' | $(CXX) -fopenmp-simd -x c++ - -o /dev/null >/dev/null 2>&1 && \
  echo -fopenmp-simd || echo -Wno-unknown-pragmas)
OMP_LIBS  :=
endif

# -ffp-contract=off: never fuse a*b+c behind our back, so results do not depend
# on the compiler; the hot loops ask for fused multiply-adds with std::fma.
NN_FLAGS := -std=c++20 $(OMP_FLAGS) -ffp-contract=off -Wall -Wextra
NN_LIBS  := -lz $(OMP_LIBS)
ifeq ($(SANITIZE),1)
NN_FLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g
endif
ifeq ($(WERROR),1)
NN_FLAGS += -Werror
endif

PROGRAMS := $(basename $(wildcard xor.cpp mlp.cpp cnn.cpp attention.cpp))
TEST_SRC := $(wildcard tests/*.cpp)

# The prefix of every file the build makes: empty, or DIR/ for BUILDDIR=DIR.
B := $(if $(BUILDDIR),$(BUILDDIR)/)

.PHONY: all programs data test check-torch bench docs pdf fuzz clean deps FORCE
all: programs data
programs: $(addprefix $(B),$(PROGRAMS))

# Rebuild everything when the compiler or flags change (e.g. SANITIZE=1).
BUILD_ID = $(CXX) $(CXXFLAGS) $(NN_FLAGS) $(LDFLAGS) $(NN_LIBS) BLAS=$(BLAS)
$(B).build-flags: FORCE
	@mkdir -p $(@D)
	@echo '$(BUILD_ID)' | cmp -s - $@ || echo '$(BUILD_ID)' > $@

# A missing header stops the build with the Debian package that provides it.
deps:
	@echo '#include <zlib.h>' | $(CXX) -E -x c++ - >/dev/null 2>&1 || \
	  { echo "error: zlib.h not found: apt-get install zlib1g-dev"; exit 1; }
	@[ "$(OPENMP)" != 1 ] || echo '#include <omp.h>' | $(CXX) $(OMP_FLAGS) -E -x c++ - >/dev/null 2>&1 || \
	  { echo "error: omp.h not found: apt-get install libgomp1 (g++) or libomp-dev (clang), or make OPENMP=0"; exit 1; }

$(B)%: %.cpp common.hpp $(B).build-flags | deps
	$(CXX) $(CXXFLAGS) $(NN_FLAGS) $< -o $@ $(LDFLAGS) $(NN_LIBS)

# The MLP calls OpenBLAS's cblas_sgemm with BLAS=1 (Debian: libopenblas-dev;
# macOS: Accelerate's), its own matrix products otherwise. The test binary
# checks both paths against each other whenever cblas.h is installed, whatever
# BLAS says.
HAVE_CBLAS := $(shell echo '$(HASH)include <$(BLAS_HEADER)>' | $(CXX) -E -x c++ - >/dev/null 2>&1 && echo 1 || echo 0)
BLAS ?= 0
ifeq ($(BLAS),1)
MLP_FLAGS := -DNN_BLAS
MLP_LIBS  := $(BLAS_LIBS)
endif
ifeq ($(HAVE_CBLAS),1)
TEST_BLAS_FLAGS := -DNN_BLAS
TEST_BLAS_LIBS  := $(BLAS_LIBS)
endif
$(B)mlp: mlp.cpp common.hpp $(B).build-flags | deps
	@if [ "$(BLAS)" = 1 ] && [ "$(HAVE_CBLAS)" != 1 ]; then \
	  echo "error: BLAS=1 but cblas.h not found: apt-get install libopenblas-dev"; exit 1; fi
	$(CXX) $(CXXFLAGS) $(NN_FLAGS) $(MLP_FLAGS) $< -o $@ $(LDFLAGS) $(NN_LIBS) $(MLP_LIBS)

# MNIST: copied from $MNIST_DIR when set, else downloaded; always checked
# against the SHA-256 of the uncompressed files (data/SHA256SUMS).
data:
	@sh data/fetch.sh

# The test suite is one doctest binary; each tests/test_<program>.cpp includes
# its program with NN_TESTING defined, and is compiled on its own. The
# end-to-end tests run the programs themselves. -Wno-restrict: GCC 12 warns
# falsely inside std::string's operator+ at -O3 (GCC bug 105329); clang has no
# such warning and rejects the flag under -Werror, so it is given to compilers
# that know -Wrestrict only.
NO_RESTRICT := $(shell echo 'int x;' | $(CXX) -Werror -Wrestrict -fsyntax-only -x c++ - >/dev/null 2>&1 && echo -Wno-restrict)
TEST_OBJ := $(TEST_SRC:.cpp=.o)
$(B)tests/%.o: tests/%.cpp tests/helpers.hpp common.hpp $(addsuffix .cpp,$(PROGRAMS)) docs/draw.cpp $(B).build-flags | deps
	@echo '#include <doctest/doctest.h>' | $(CXX) -E -x c++ - >/dev/null 2>&1 || \
	  { echo "error: doctest/doctest.h not found: apt-get install doctest-dev"; exit 1; }
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $(NN_FLAGS) $(NO_RESTRICT) $(TEST_BLAS_FLAGS) -c $< -o $@

$(B)tests/run_tests: $(addprefix $(B),$(TEST_OBJ))
	$(CXX) $(CXXFLAGS) $(NN_FLAGS) $^ -o $@ $(LDFLAGS) $(NN_LIBS) $(TEST_BLAS_LIBS)

# make test runs the PyTorch check first (when CHECK_TORCH=1, python can import
# torch and MNIST is there; otherwise one line says why not), then the doctest
# suite, whose "N passed, N failed" stays the last line; either failing fails.
PYTHON      ?= /usr/bin/python3
CHECK_TORCH ?= 1
# torch's own threads only: its pool and OpenBLAS's on the same cores slow both.
TORCH_ENV   := OPENBLAS_NUM_THREADS=1
test: $(PROGRAMS) tests/run_tests $(if $(filter 1,$(CHECK_TORCH)),tests/reference/mlp-wrong-gradient)
	@status=0; \
	if [ "$(CHECK_TORCH)" != 1 ]; then echo "check-torch: skipped (CHECK_TORCH=$(CHECK_TORCH))"; \
	elif ! $(PYTHON) -c 'import torch' 2>/dev/null; then \
	  echo "check-torch: skipped: $(PYTHON) cannot import torch (Debian: apt-get install python3-torch libopenblas0-pthread)"; \
	else $(MAKE) --no-print-directory check-torch CHECK_TORCH_FLAGS=--skip-without-mnist || status=1; fi; \
	./tests/run_tests || status=1; exit $$status

# The PyTorch check (tests/reference/check.py explains it and its tolerances),
# then the same check against an MLP built with a deliberately wrong gradient
# (NN_TEST_WRONG_GRADIENT flips the sign of db1), which must fail.
tests/reference/mlp-wrong-gradient: mlp.cpp common.hpp .build-flags | deps
	$(CXX) $(CXXFLAGS) $(NN_FLAGS) -DNN_TEST_WRONG_GRADIENT $< -o $@ $(LDFLAGS) $(NN_LIBS)
check-torch: $(PROGRAMS) tests/reference/mlp-wrong-gradient
	@$(PYTHON) -c 'import torch' 2>/dev/null || \
	  { echo "check-torch: $(PYTHON) cannot import torch (Debian: apt-get install python3-torch libopenblas0-pthread)"; exit 1; }
	@$(TORCH_ENV) $(PYTHON) tests/reference/check.py $(CHECK_TORCH_FLAGS)
	@$(TORCH_ENV) $(PYTHON) tests/reference/check.py $(CHECK_TORCH_FLAGS) --expect-failure \
	  --mlp tests/reference/mlp-wrong-gradient

# The two MLP builds side by side, for `make bench`.
tests/bench/mlp-builtin: mlp.cpp common.hpp .build-flags | deps
	$(CXX) $(CXXFLAGS) $(NN_FLAGS) $< -o $@ $(LDFLAGS) $(NN_LIBS)
tests/bench/mlp-blas: mlp.cpp common.hpp .build-flags | deps
	$(CXX) $(CXXFLAGS) $(NN_FLAGS) -DNN_BLAS $< -o $@ $(LDFLAGS) $(NN_LIBS) $(BLAS_LIBS)

# `make bench MARCH=x86-64-v3`: the same bench with every program built for
# another target (here AVX2 + FMA, which an AVX-512 machine runs too; any
# -march value works), into tests/bench/$(MARCH)/, beside the default build
# and not instead of it; the peak is measured at that target's vector width.
MARCH ?=
ifneq ($(MARCH),)
BENCH_DIR := tests/bench/$(MARCH)
BENCH_BINS := $(addprefix $(BENCH_DIR)/,$(filter-out mlp,$(PROGRAMS)) mlp-builtin mlp-blas)
$(BENCH_DIR)/%: %.cpp common.hpp | deps
	@mkdir -p $(BENCH_DIR)
	$(CXX) -O3 -march=$(MARCH) $(NN_FLAGS) $< -o $@ $(LDFLAGS) $(NN_LIBS)
$(BENCH_DIR)/mlp-builtin: mlp.cpp common.hpp | deps
	@mkdir -p $(BENCH_DIR)
	$(CXX) -O3 -march=$(MARCH) $(NN_FLAGS) $< -o $@ $(LDFLAGS) $(NN_LIBS)
$(BENCH_DIR)/mlp-blas: mlp.cpp common.hpp | deps
	@mkdir -p $(BENCH_DIR)
	$(CXX) -O3 -march=$(MARCH) $(NN_FLAGS) -DNN_BLAS $< -o $@ $(LDFLAGS) $(NN_LIBS) -lopenblas
endif

bench: $(if $(MARCH),$(BENCH_BINS),$(PROGRAMS)) data
	@BENCH_MARCH=$(MARCH) sh tests/bench/bench.sh

# The tutorial: docs/lit.awk turns each part into Markdown (the rules are in
# its comments and in docs/intro.md), concatenated into docs/tutorial.md in
# reading order; pandoc renders that into docs/tutorial.html, one file with
# the pictures, styles and MathML inside, nothing loaded from the network.
# The pictures: docs/figures (C++, includes cnn.cpp) draws them from the files
# committed under docs/data/ (docs/data/README.md names the command that made
# each) and from MNIST; one whose input is missing is left out, and the page
# says so in one line. -Wno-restrict: as for the tests (GCC bug 105329).
DOCS_PARTS := docs/intro.md $(addsuffix .cpp,$(PROGRAMS)) common.hpp docs/results.md
DOCS_ATTENTION_LOGS := $(wildcard docs/data/attention/*.txt docs/data/attention/*.csv)
DOCS_SWEEPS := $(foreach p,mlp cnn,$(if $(wildcard docs/data/$(p)/*.csv),docs/sweep_$(p).svg))
DOCS_MADE := docs/mnist_digits.svg $(if $(wildcard docs/data/bench.txt),docs/bench.md) \
  $(patsubst docs/data/training_loss_%.txt,docs/loss_%.svg,$(wildcard docs/data/training_loss_*.txt)) \
  $(if $(wildcard docs/data/cnn.model),docs/cnn_filters.svg docs/cnn_confusion.svg) \
  $(if $(DOCS_ATTENTION_LOGS),docs/loss_attention.svg) $(DOCS_SWEEPS) \
  $(if $(wildcard docs/data/attention/attention.model),docs/attention_map.svg)
PANDOC_FLAGS := -f markdown-raw_tex -s --toc --toc-depth=2 --mathml --self-contained -H tutorial-style.html \
  --metadata title="Neural networks from scratch, one C++ file per model" --fail-if-warnings

docs: draw docs/tutorial.md docs/tutorial.html

docs/tutorial.html: docs/tutorial.md docs/tutorial-style.html docs/links.awk
	@command -v pandoc >/dev/null || { echo "docs: pandoc not found (apt-get install pandoc): wrote docs/tutorial.md only"; exit 1; }
	cd docs && pandoc $(PANDOC_FLAGS) tutorial.md -o tutorial.tmp.html && \
	  awk -f links.awk tutorial.tmp.html tutorial.tmp.html > tutorial.tmp.linked.html && \
	  mv tutorial.tmp.linked.html tutorial.html && rm tutorial.tmp.html

# The same book as a PDF, for printing and e-readers: headless Chromium prints
# docs/tutorial.html with its print styles (A4, a page per chapter), no LaTeX;
# tagged (readers can reflow it) and with the headings as bookmarks.
CHROMIUM ?= chromium
CHROMIUM_FLAGS := --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --no-default-browser-check --mute-audio
pdf: docs/tutorial.pdf
docs/tutorial.pdf: docs/tutorial.html
	@command -v $(CHROMIUM) >/dev/null || { echo "pdf: $(CHROMIUM) not found (apt-get install chromium)"; exit 1; }
	@d=$$(mktemp -d) && $(CHROMIUM) $(CHROMIUM_FLAGS) --user-data-dir=$$d --no-pdf-header-footer --generate-pdf-document-outline \
	  --print-to-pdf=docs/tutorial.tmp.pdf "file://$(CURDIR)/docs/tutorial.html" >$$d.log 2>&1; \
	  s=$$?; [ -s docs/tutorial.tmp.pdf ] || { s=1; tail -n 5 $$d.log; }; rm -rf $$d $$d.log; \
	  [ $$s = 0 ] && mv docs/tutorial.tmp.pdf $@ && echo "wrote $@" || { rm -f docs/tutorial.tmp.pdf; echo "pdf: chromium failed"; exit 1; }

docs/tutorial.md: docs/lit.awk $(DOCS_PARTS) $(DOCS_MADE)
	awk -f docs/lit.awk $(DOCS_PARTS) > docs/tutorial.tmp.md && mv docs/tutorial.tmp.md $@

docs/figures: docs/figures.cpp cnn.cpp common.hpp .build-flags | deps
	$(CXX) $(CXXFLAGS) $(NN_FLAGS) $(NO_RESTRICT) $< -o $@ $(LDFLAGS) $(NN_LIBS)

docs/bench.md: docs/bench.awk docs/data/bench.txt
	awk -f docs/bench.awk docs/data/bench.txt > docs/bench.tmp.md && mv docs/bench.tmp.md $@
docs/mnist_digits.svg: docs/figures
	./docs/figures digits $@
docs/loss_%.svg: docs/data/training_loss_%.txt docs/figures
	./docs/figures loss $@ "Training loss: $*" $<
docs/loss_attention.svg: $(DOCS_ATTENTION_LOGS) docs/figures
	./docs/figures loss $@ "Training loss: attention" $(DOCS_ATTENTION_LOGS)
docs/sweep_mlp.svg: $(wildcard docs/data/mlp/*.csv)
docs/sweep_cnn.svg: $(wildcard docs/data/cnn/*.csv)
docs/sweep_%.svg: docs/figures
	./docs/figures val $@ "Validation accuracy: $*, learning-rate candidates" $(wildcard docs/data/$*/*.csv)
docs/cnn_filters.svg: docs/data/cnn.model docs/figures
	./docs/figures filters $< $@
docs/cnn_confusion.svg docs/cnn_eval.md &: docs/data/cnn.model docs/figures
	./docs/figures confusion $< docs/cnn_confusion.svg docs/cnn_eval.md
# The attention map: ./attention writes the matrix as data (docs/attention_map.csv,
# not committed), docs/figures draws it. Without MNIST neither can run: make
# says why in one line and the page notes the missing picture.
docs/attention_map.csv: docs/data/attention/attention.model attention
	@./attention --load $< --eval --log none --attention-map $@ >/dev/null 2>docs/attention_map.err || \
	  echo "docs: attention map not computed: $$(cat docs/attention_map.err)"; rm -f docs/attention_map.err
docs/attention_map.svg: docs/attention_map.csv docs/figures
	@if [ -f $< ]; then ./docs/figures attention $< $@; fi

# The drawing page: docs/draw (C++, includes mlp.cpp) puts the trained MLP
# (mnist_model.bin, the original's layout) and, when committed, the CNN
# (docs/data/cnn.model) and the attention model (docs/data/attention/
# attention.model) into docs/draw.template.html with docs/draw.js, giving
# docs/draw.html, one page with the weights inside; and docs/draw.md, the
# tutorial's paragraph that links to it (results.md includes it). Without
# mnist_model.bin, ./mlp trains one first (seconds; passive OpenMP waiting, as
# mlp.cpp advises on a busy machine); when that fails too (no MNIST), draw.md
# says in one line that the page was not built, and so does make.
.PHONY: draw
draw: docs/draw.html docs/draw.md
docs/draw: docs/draw.cpp mlp.cpp common.hpp .build-flags | deps
	$(CXX) $(CXXFLAGS) $(NN_FLAGS) $(NO_RESTRICT) $< -o $@ $(LDFLAGS) $(NN_LIBS)
docs/draw.html docs/draw.md &: docs/draw docs/draw.template.html docs/draw.js \
  $(wildcard mnist_model.bin docs/data/cnn.model docs/data/attention/attention.model) | mlp
	@[ -f mnist_model.bin ] || OMP_WAIT_POLICY=passive ./mlp --log none >/dev/null 2>docs/draw.tmp.err || true
	./docs/draw docs/draw.template.html docs/draw.js mnist_model.bin docs/data/cnn.model \
	  docs/data/attention/attention.model docs/draw.html docs/draw.md \
	  "$$(head -n1 docs/draw.tmp.err 2>/dev/null)"; s=$$?; rm -f docs/draw.tmp.err; exit $$s
docs/tutorial.md: docs/draw.md

# Fuzzing (clang's libFuzzer, with address and undefined-behaviour sanitizers):
# each tests/fuzz/fuzz_*.cpp is one target; `make fuzz` runs each for
# FUZZ_SECONDS and prints its executions and findings.
FUZZ_SECONDS ?= 60
FUZZ_CXX ?= clang++
FUZZ_TARGETS := $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.cpp)))
tests/fuzz/bin/%: tests/fuzz/%.cpp tests/fuzz/fuzz.hpp common.hpp $(addsuffix .cpp,$(PROGRAMS))
	@mkdir -p tests/fuzz/bin
	@command -v $(FUZZ_CXX) >/dev/null || { echo "error: $(FUZZ_CXX) not found: apt-get install clang"; exit 1; }
	$(FUZZ_CXX) -std=c++20 -O1 -g -fopenmp -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $< -o $@ -lz
fuzz: $(addprefix tests/fuzz/bin/,$(FUZZ_TARGETS))
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf tests/fuzz/bin
	rm -f $(PROGRAMS) tests/run_tests tests/*.o .build-flags tests/bench/peak tests/bench/mlp-builtin tests/bench/mlp-blas
	rm -rf $(wildcard tests/bench/*/)
	rm -rf tests/reference/mlp-wrong-gradient tests/reference/__pycache__
	rm -f docs/figures docs/*.svg docs/tutorial.md docs/tutorial.html docs/tutorial.pdf docs/tutorial-*.png docs/bench.md docs/cnn_eval.md docs/attention_map.csv
	rm -f docs/draw docs/draw.html docs/draw.md
