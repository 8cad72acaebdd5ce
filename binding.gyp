{
  "targets": [
    {
      "target_name": "c1m",
      "sources": [
        "native/src/addon.c", "native/src/addon_process.c", "native/src/addon_udp.c", "native/src/addon_tls.c", "native/src/loop.c", "native/src/conn.c", "native/src/commands.c",
        "native/src/listener.c", "native/src/handoff.c", "native/src/timer.c", "native/src/sys.c",
        "native/src/errname.c", "native/src/udp.c", "native/src/tls.c"
      ],
      "include_dirs": ["native/include"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "cflags!": ["-fno-exceptions"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }],
        ["OS=='linux' and '<!(echo $C1M_ASAN)'=='1'", {
          "cflags": ["-fsanitize=address", "-fno-omit-frame-pointer", "-O1", "-g"],
          "ldflags": ["-fsanitize=address"]
        }]
      ]
    }
  ]
}
