// butter: the sandbox launcher's command line.
#include <cstdio>
#include <cstring>

#include "version.hpp"

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
        std::printf("butter %s\n", BUTTER_VERSION);
        return 0;
    }
    std::fprintf(stderr, "butter: usage: butter --version\n");
    return 2;
}
