{
  "targets": [
    {
      "target_name": "c1m",
      "sources": ["native/src/addon.c", "native/src/reactor.c", "native/src/sys.c", "native/src/errname.c"],
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
