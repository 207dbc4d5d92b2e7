# Sourced by boards/profile.sh and boards/store-ops.sh (from boards/):
# `build_member CAP FEATURES` builds the member firmware of mps2-an386 for a
# group of CAP leaves (tree depth from CAP, as boards/measure.sh) with the
# features given (e.g. `suite-3`, or `reboot,suite-3` for the stored
# member) and sets `elf`; `address_of NAME` prints the address of the
# function of that demangled name in it (the first if several).
target=thumbv7em-none-eabihf
elf=${CARGO_TARGET_DIR:-target}/$target/release/board-mps2-an386

build_member() {
    local depth=0
    while [ $((1 << depth)) -lt "$1" ]; do depth=$((depth + 1)); done
    MLS_NOSTD_MAX_TREE_DEPTH=$depth cargo build --release -q -p board-mps2-an386 --target "$target" \
        --no-default-features --features "cap-$1,$2" >&2
}

address_of() {
    arm-none-eabi-nm -C "$elf" | awk -v f="$1" '$2 ~ /^[tT]$/ { name = $0; sub(/^[^ ]+ [^ ]+ /, "", name); if (name == f) print $1 }' | head -n 1
}
