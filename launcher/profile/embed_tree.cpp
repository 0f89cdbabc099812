// butter-embed-tree TOML NAME SYMBOL OUT.cpp: a build tool. Parses the TOML file TOML as the
// profile reader does (positions under NAME) and writes OUT.cpp defining
// `butter::launcher::profile::SYMBOL`, the tree's encoding (tree_codec.hpp), as a
// std::string_view. A syntax error fails the build with the diagnostic.
#include <cstdio>
#include <string>

#include <butter/fd.hpp>

#include "profile/toml_reader.hpp"
#include "profile/tree_codec.hpp"

int main(int argc, char** argv) {
    using namespace butter::launcher::profile;
    if (argc != 5) {
        std::fprintf(stderr, "usage: butter-embed-tree TOML NAME SYMBOL OUT.cpp\n");
        return 2;
    }
    auto text = butter::read_file(argv[1]);
    if (!text) {
        std::fprintf(stderr, "butter-embed-tree: %s\n", text.error().what().c_str());
        return 1;
    }
    Diagnostics d;
    std::optional<Value> tree = parse_toml(*text, argv[2], d);
    if (!tree) {
        for (const auto& x : d)
            std::fprintf(stderr, "%s\n", x.render().c_str());
        return 1;
    }
    std::string bytes = encode_tree(*tree);
    std::string out = std::string("// Generated from ") + argv[1] +
                      " by butter-embed-tree: do not edit.\n#include <string_view>\n"
                      "namespace butter::launcher::profile {\n"
                      "namespace {\nconstexpr unsigned char kBytes[] = {";
    char hex[16];
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::snprintf(hex, sizeof hex, "%s0x%02x",
                      i == 0   ? "\n    "
                      : i % 16 ? ", "
                               : ",\n    ",
                      static_cast<unsigned char>(bytes[i]));
        out += hex;
    }
    out += std::string("};\n}  // namespace\nextern const std::string_view ") + argv[3] +
           ";\nconst std::string_view " + argv[3] +
           "(reinterpret_cast<const char*>(kBytes), sizeof kBytes);\n}\n";
    FILE* f = std::fopen(argv[4], "we");
    if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size() || std::fclose(f) != 0) {
        std::perror(argv[4]);
        return 1;
    }
    return 0;
}
