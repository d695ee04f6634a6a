import FarmCommands

@main
struct Entrypoint {
    static func main() async {
        await WheelfarmCommand.runMain()
    }
}
