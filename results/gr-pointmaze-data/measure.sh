set -x
cd /work/wt/grdata
export PYTHONPATH=$PWD MINARI_DATASETS_PATH=/tmp/grdata/minari-m
rm -rf /tmp/grdata/cache-gen /tmp/grdata/minari-m
date -u
uptime
/usr/bin/time -f "wall %e s user %U s sys %S s" env JAXO2O_CACHE_DIR=/tmp/grdata/cache-gen nice -n 5 .venv/bin/python -m jaxo2o.data generate --tier quick-gr --tasks PointMaze_UMaze-v3 --no-progress
rm -rf /tmp/grdata/minari-m
uptime
/usr/bin/time -f "wall %e s user %U s sys %S s" env JAXO2O_CACHE_DIR=/tmp/grdata/cache-gen nice -n 5 .venv/bin/python -m jaxo2o.data generate --tier quick-gr --tasks PointMaze_UMaze-v3 --no-progress
uptime
/usr/bin/time -f "wall %e s user %U s sys %S s" nice -n 5 .venv/bin/python -m benchmarks.maze_eval_cost --tasks PointMaze_UMaze-v3 --eval-spec --seeds 4 --episodes 10 100
uptime
/usr/bin/time -f "wall %e s user %U s sys %S s" nice -n 5 .venv/bin/python -m benchmarks.maze_eval_cost --tasks PointMaze_UMaze-v3 --eval-spec --seeds 1 --episodes 100
uptime
/usr/bin/time -f "wall %e s user %U s sys %S s" nice -n 5 .venv/bin/python -m benchmarks.gr_pointmaze_lengths --task PointMaze_UMaze-v3 --c-steps 20000 --device-steps 100000 --streams 100
uptime
date -u
