# Sourced by the sensitivity benchmarks: `worktrees REPO DIR` makes (or resets) two stable
# worktrees DIR/a and DIR/b of REPO's HEAD. Stable paths keep their virtualenvs cached, so
# reruns reinstall nothing.
worktrees() {
  local repo=$1 work=$2 rev w
  rev=$(git -C "$repo" rev-parse HEAD)
  mkdir -p "$work"
  for w in a b; do
    if [ -e "$work/$w/.git" ] && git -C "$work/$w" rev-parse --git-dir >/dev/null 2>&1; then
      git -C "$work/$w" checkout --quiet --force --detach "$rev"
    else
      rm -rf "${work:?}/$w"
      git -C "$repo" worktree prune
      git -C "$repo" worktree add --quiet --force --detach "$work/$w" "$rev"
    fi
  done
}
