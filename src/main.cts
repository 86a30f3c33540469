/**
 * The executable's entry. libuv sizes its thread pool once, on first use, from UV_THREADPOOL_SIZE, and that pool
 * does the service's image work (sharp decodes, resizes and encodes on it, one image per thread: on glibc Linux
 * sharp gives each image one libvips thread). Loading ES modules already uses the pool, so an ES entry would be
 * too late to size it: this CommonJS file sets it first (one thread per core, at least libuv's 4), then loads the
 * server. An operator's own UV_THREADPOOL_SIZE is kept.
 */
import os = require('node:os');

if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(Math.max(4, os.availableParallelism()));
void import('./server.js');
