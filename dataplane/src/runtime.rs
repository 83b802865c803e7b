//! (being written) Threads, sockets, the epoll fallback.
